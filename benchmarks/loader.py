"""Benchmark: molremote's in-process BELKA batch reader over prepared memmaps: samples/s and resident memory
over several epochs (it must stay flat: the 5th-place team dropped torch's DataLoader because its memory
grew over an epoch).

    .venv/bin/python benchmarks/loader.py                       # 10M molecules, 3 epochs, batch 4096
    .venv/bin/python benchmarks/loader.py --n 300000 --keep /tmp/belka-bench

Uses (or makes) the same generated parquet and prepared folder as benchmarks/belka_tokenize.py with --keep.
Reads every batch's tokens and labels (sorted-index fancy indexing on the maps) and touches them (a sum), as
a training step would. RSS is sampled every 50 batches (psutil: resident set including mapped file pages).
Target: >= 1M samples/s, RSS flat across epochs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument(
        "--keep", help="folder to keep/reuse the parquet and prepared arrays (as benchmarks/belka_tokenize.py)"
    )
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--release-mib", type=int, default=0, help="drop mapped pages after this many MiB read (0: never)")
    a = ap.parse_args()

    import numpy as np
    import psutil
    from belka_reader import BatchReader  # beside this script

    from molremote.tasks.belka import synth as belka_synth
    from molremote.tasks.belka.memmap import PreparedSplit
    from molremote.tasks.belka.prepare import prepare

    d = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="belka-bench-"))
    d.mkdir(parents=True, exist_ok=True)
    parquet, prepared = d / f"train-{a.n}.parquet", d / "prepared"
    if not parquet.exists():
        belka_synth.write(parquet, a.n, split="train", seed=0)
    meta_ok = (prepared / "meta.json").exists() and (prepared / "meta.json").read_text().find(
        str(parquet.resolve())
    ) >= 0
    if not meta_ok:
        prepare(parquet, prepared, "train", progress=False, restart=True)
    proc = psutil.Process()
    split = PreparedSplit(prepared)
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {split.n:,} molecules, "
        f"tokens file {split.n * split.max_length / 2**30:.2f} GiB"
    )
    rss0 = proc.memory_info().rss
    train_idx = np.arange(split.n)
    reader = BatchReader(split, train_idx, a.batch_size, seed=0, release_bytes=(a.release_mib << 20) or None)
    print(f"RSS after opening + index arrays: {rss0 / 2**20:.0f} MiB")
    for epoch in range(a.epochs):
        t = time.perf_counter()
        n, peak, check = 0, 0, 0
        for i, b in enumerate(reader.epoch(epoch)):
            n += len(b.idx)
            check += int(b.tokens[:, 0].sum()) + int(b.labels[:, 0].sum())
            if i % 50 == 0:
                peak = max(peak, proc.memory_info().rss)
        dt = time.perf_counter() - t
        mi = proc.memory_info()
        rss, anon = mi.rss, mi.rss - mi.shared  # shared = file-backed pages (the maps)
        print(
            f"epoch {epoch}: {n:,} samples in {dt:6.2f} s = {n / dt / 1e6:5.2f} M samples/s   "
            f"RSS end {rss / 2**20:6.0f} MiB (anonymous {anon / 2**20:4.0f} MiB), "
            f"max sampled {max(peak, rss) / 2**20:6.0f} MiB"
        )
    if not a.keep:
        import shutil

        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
