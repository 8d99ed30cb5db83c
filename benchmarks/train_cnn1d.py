"""Benchmark: cnn1d training throughput fed by molremote's in-process BELKA batch reader vs a plain reference
loop fed by torch's DataLoader (a map-style Dataset over the same memmaps, shuffled, worker processes).
Same model, same optimizer, same batch size; each side runs in its own subprocess.

    .venv/bin/python benchmarks/train_cnn1d.py --n 300000 --keep /tmp/belka-bench [--steps 40] [--tiny]
    .venv/bin/python benchmarks/train_cnn1d.py --n 10000000 --keep /tmp/belka-bench --tiny --rounds 3 --control

Prints samples/s, the time per batch spent waiting for the loader and in the training step, torch's thread
count and peak RSS (the training process plus, for the DataLoader, its workers) for each. `--rounds`
alternates the sides (the shared 2-core machine drifts by +-20% within a minute, so compare medians of
several rounds); `--control` adds a loader-free run that trains on one fixed batch: the model's own step time.
On a CPU the model dominates: the reader costs 2-6 ms of a 150-300 ms step, and BatchReader runs match the
control within the drift; a DataLoader's workers take CPU from the step while they prefetch.
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


def child(kind: str, prepared: str, steps: int, batch: int, tiny: bool, workers: int, threads: int | None) -> dict:
    import numpy as np
    import psutil
    import torch

    if threads:
        torch.set_num_threads(threads)

    from belka_reader import BatchReader  # beside this script

    from molremote.models.cnn1d import build
    from molremote.models.params import Cnn1dParams
    from molremote.tasks.belka.memmap import PreparedSplit

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
        loss = (
            torch.nn.functional.binary_cross_entropy_with_logits(model(tokens.long()), y.clamp(max=1), reduction="none")
            * mask
        ).mean()
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
    if kind == "fixed":  # control: no loader, one batch over and over (the model's own step time)
        b = next(BatchReader(split, np.arange(split.n), batch, seed=0).epoch(0))
        fixed = (torch.from_numpy(b.tokens), torch.from_numpy(b.labels))
        it = iter(lambda: fixed, None)
    elif kind == "molremote":
        reader = BatchReader(split, np.arange(split.n), batch, seed=0)
        it = ((torch.from_numpy(b.tokens), torch.from_numpy(b.labels)) for b in reader.epoch(0))
    else:

        class DS(torch.utils.data.Dataset):
            def __len__(self):
                return split.n

            def __getitem__(self, i):
                return torch.from_numpy(np.array(split.tokens[i])), torch.from_numpy(np.array(split.labels[i]))

        dl = torch.utils.data.DataLoader(
            DS(), batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=workers > 0
        )
        it = iter(dl)
    load_s = step_s = 0.0
    for i in range(warm + steps):
        if i == warm:
            t = time.perf_counter()
            load_s = step_s = 0.0
        t0 = time.perf_counter()
        tokens, labels = next(it)
        t1 = time.perf_counter()
        step(tokens, labels)
        t2 = time.perf_counter()
        load_s, step_s = load_s + t1 - t0, step_s + t2 - t1
        if i % 5 == 0:
            peak = max(peak, rss())
    dt = time.perf_counter() - t
    cpu = proc.cpu_times()
    return {
        "samples_per_s": steps * batch / dt,
        "seconds": dt,
        "peak_rss_mib": max(peak, rss()) / 2**20,
        "load_ms": 1e3 * load_s / steps,
        "step_ms": 1e3 * step_s / steps,
        "torch_threads": torch.get_num_threads(),
        "cpu_s": cpu.user + cpu.system,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--keep")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    ap.add_argument("--tiny", action="store_true", help="a small cnn1d (as the demo) instead of the starter net")
    ap.add_argument("--dataloader-first", action="store_true", help="run the DataLoader side first (order check)")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads in the training process of both sides")
    ap.add_argument("--rounds", type=int, default=1, help="run both sides this many times, alternating")
    ap.add_argument("--control", action="store_true", help="also run a loader-free control (one fixed batch)")
    ap.add_argument("--child")
    ap.add_argument("--prepared")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.prepared, a.steps, a.batch_size, a.tiny, a.workers, a.threads)))
        return

    from molremote.tasks.belka import synth as belka_synth
    from molremote.tasks.belka.prepare import prepare

    d = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="belka-bench-"))
    d.mkdir(parents=True, exist_ok=True)
    parquet, prepared = d / f"train-{a.n}.parquet", d / "prepared"
    if not parquet.exists():
        belka_synth.write(parquet, a.n, split="train", seed=0)
    if not ((prepared / "meta.json").exists() and str(parquet.resolve()) in (prepared / "meta.json").read_text()):
        prepare(parquet, prepared, "train", progress=False, restart=True)
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
        f"{'tiny' if a.tiny else 'starter'} cnn1d, batch {a.batch_size}, {a.steps} timed steps"
    )
    res: dict[str, list[float]] = {"molremote": [], "dataloader": [], "fixed": []}
    kinds = ("dataloader", "molremote") if a.dataloader_first else ("molremote", "dataloader")
    for _ in range(a.rounds):
        for kind in kinds + (("fixed",) if a.control else ()):
            cmd = (
                [
                    sys.executable,
                    __file__,
                    "--child",
                    kind,
                    "--prepared",
                    str(prepared),
                    "--steps",
                    str(a.steps),
                    "--batch-size",
                    str(a.batch_size),
                    "--workers",
                    str(a.workers),
                ]
                + (["--tiny"] if a.tiny else [])
                + (["--threads", str(a.threads)] if a.threads else [])
            )
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                raise SystemExit(f"{kind} failed:\n{r.stderr}")
            x = json.loads(r.stdout.strip().splitlines()[-1])
            res[kind].append(x["samples_per_s"])
            label = {
                "molremote": "molremote BatchReader",
                "fixed": "control: one fixed batch",
                "dataloader": f"torch DataLoader ({a.workers} workers)",
            }[kind]
            print(
                f"  {label:28s}: {x['samples_per_s']:7.0f} samples/s  (load {x['load_ms']:5.1f} ms + step "
                f"{x['step_ms']:6.1f} ms per batch, {x['torch_threads']} torch threads, {x['cpu_s']:5.1f} s CPU "
                f"in the trainer)  peak RSS {x['peak_rss_mib']:6.0f} MiB",
                flush=True,
            )
    med = {k: sorted(v)[len(v) // 2] for k, v in res.items()}
    print(f"ratio molremote / DataLoader (medians): {med['molremote'] / med['dataloader']:.2f}x")
    if not a.keep:
        import shutil

        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
