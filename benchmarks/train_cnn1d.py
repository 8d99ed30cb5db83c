"""Benchmark: cnn1d training throughput fed by molremote's in-process BELKA batch reader vs a plain reference
loop fed by torch's DataLoader (a map-style Dataset over the same memmaps, shuffled, worker processes).
Same model, same optimizer, same batch size; each side runs in its own subprocess.

    .venv/bin/python benchmarks/train_cnn1d.py --n 300000 --keep /tmp/belka-bench [--steps 40] [--tiny]

Prints samples/s and peak RSS (the training process plus, for the DataLoader, its workers) for each. On a
CPU the model dominates; the gap is the loader's overhead (per-item __getitem__ + collate + inter-process
transfer vs one sorted gather per batch).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(kind: str, prepared: str, steps: int, batch: int, tiny: bool, workers: int) -> dict:
    import numpy as np
    import psutil
    import torch

    from molremote.models.cnn1d import build
    from molremote.models.params import Cnn1dParams
    from molremote.tasks.belka_memmap import BatchReader, PreparedSplit

    torch.manual_seed(0)
    split = PreparedSplit(prepared)
    p = Cnn1dParams(embed_dim=16, channels=[16, 32, 48], hidden=[128, 64]) if tiny else Cnn1dParams()
    model = build(p, {"vocab_size": 39, "max_length": split.max_length, "n_outputs": 3})
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    proc = psutil.Process()
    peak = 0

    def step(tokens: torch.Tensor, labels: torch.Tensor) -> None:
        y = labels.float()
        mask = (labels != 255).float()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(model(tokens.long()), y.clamp(max=1),
                                                                     reduction="none") * mask).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def rss() -> int:
        total = proc.memory_info().rss
        for c in proc.children(recursive=True):
            try:
                total += c.memory_info().rss
            except psutil.Error:
                pass
        return total

    warm = 3
    if kind == "molremote":
        reader = BatchReader(split, np.arange(split.n), batch, seed=0)
        it = (( torch.from_numpy(b.tokens), torch.from_numpy(b.labels)) for b in reader.epoch(0))
    else:
        class DS(torch.utils.data.Dataset):
            def __len__(self):
                return split.n

            def __getitem__(self, i):
                return torch.from_numpy(np.array(split.tokens[i])), torch.from_numpy(np.array(split.labels[i]))

        dl = torch.utils.data.DataLoader(DS(), batch_size=batch, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0)
        it = iter(dl)
    for i in range(warm + steps):
        if i == warm:
            t = time.perf_counter()
        tokens, labels = next(it)
        step(tokens, labels)
        if i % 5 == 0:
            peak = max(peak, rss())
    dt = time.perf_counter() - t
    return {"samples_per_s": steps * batch / dt, "seconds": dt, "peak_rss_mib": max(peak, rss()) / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--keep")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    ap.add_argument("--tiny", action="store_true", help="a small cnn1d (as the demo) instead of the starter net")
    ap.add_argument("--dataloader-first", action="store_true", help="run the DataLoader side first (order check)")
    ap.add_argument("--child")
    ap.add_argument("--prepared")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.prepared, a.steps, a.batch_size, a.tiny, a.workers)))
        return

    from molremote.tasks import belka_synth
    from molremote.tasks.belka_prepare import prepare

    d = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="belka-bench-"))
    d.mkdir(parents=True, exist_ok=True)
    parquet, prepared = d / f"train-{a.n}.parquet", d / "prepared"
    if not parquet.exists():
        belka_synth.write(parquet, a.n, split="train", seed=0)
    if not ((prepared / "meta.json").exists() and str(parquet.resolve()) in (prepared / "meta.json").read_text()):
        prepare(parquet, prepared, "train", progress=False, restart=True)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"{'tiny' if a.tiny else 'starter'} cnn1d, batch {a.batch_size}, {a.steps} timed steps")
    res = {}
    for kind in (("dataloader", "molremote") if a.dataloader_first else ("molremote", "dataloader")):
        cmd = [sys.executable, __file__, "--child", kind, "--prepared", str(prepared), "--steps", str(a.steps),
               "--batch-size", str(a.batch_size), "--workers", str(a.workers)] + (["--tiny"] if a.tiny else [])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"{kind} failed:\n{r.stderr}")
        res[kind] = json.loads(r.stdout.strip().splitlines()[-1])
        label = "molremote BatchReader" if kind == "molremote" else f"torch DataLoader ({a.workers} workers)"
        print(f"  {label:28s}: {res[kind]['samples_per_s']:9.0f} samples/s  peak RSS {res[kind]['peak_rss_mib']:6.0f} MiB")
    print(f"ratio molremote / DataLoader: {res['molremote']['samples_per_s'] / res['dataloader']['samples_per_s']:.2f}x")
    if not a.keep:
        import shutil

        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
