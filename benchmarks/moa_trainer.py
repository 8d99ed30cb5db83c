"""Benchmark: one MoA MLP fold through molremote's trainer (the real MoaTask reading MoA-shaped CSVs, the real
Trainer: per-step schedule, loss accumulation on the device, metrics rows, checkpoint checks, stop checks) vs a
plain PyTorch loop with a DataLoader over the same feature matrix, same model, optimizer, loss, batch size.

    .venv/bin/python benchmarks/moa_trainer.py                           # 20,000 x 875 synthetic rows, h=2048
    .venv/bin/python benchmarks/moa_trainer.py --hidden 128 --rounds 3   # a small model: overhead shows more
    .venv/bin/python benchmarks/moa_trainer.py --keep /tmp/moa-bench     # keep / reuse the generated CSVs

Data: synthetic rows shaped like lish-moa's train_features.csv (cp_type/cp_time/cp_dose, 772 g- and 100 c-
columns, 8% controls), 206 scored targets with MoA-like rarity (0.1-3% positives) that depend on the features,
drug ids; written once as the competition's CSV files. Preprocessing is off (features as read), and only the
training steps are timed on both sides (epoch 1 is a warm-up; then `--epochs` epochs): the trainer's
`train_epoch` vs the loop's `for x, y in loader` body, each in its own subprocess, sides alternating per round.
Prints samples/s per side and the overhead ratio trainer / plain (time per sample; < 1 means the trainer is
faster), and checks that the two sides' first-step losses agree (same model init and data).
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

ROOT = Path(__file__).resolve().parent.parent


def make_data(folder: Path, n: int, n_test: int, seed: int = 0) -> None:
    import numpy as np
    import pandas as pd

    if (folder / "sample_submission.csv").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    genes, cells, targets = 772, 100, 206

    def features(m: int, prefix: str) -> pd.DataFrame:
        x = rng.normal(size=(m, genes + cells)).astype(np.float32)
        df = pd.DataFrame(x, columns=[f"g-{i}" for i in range(genes)] + [f"c-{i}" for i in range(cells)])
        df.insert(0, "cp_dose", rng.choice(["D1", "D2"], m))
        df.insert(0, "cp_time", rng.choice([24, 48, 72], m))
        df.insert(0, "cp_type", np.where(rng.random(m) < 0.08, "ctl_vehicle", "trt_cp"))
        df.insert(0, "sig_id", [f"{prefix}_{i:06d}" for i in range(m)])
        return df

    train, test = features(n, "id"), features(n_test, "te")
    x = train.filter(regex=r"^[gc]-").to_numpy()
    w = rng.normal(size=(x.shape[1], targets)) / np.sqrt(x.shape[1])
    logits = x @ w
    rate = rng.uniform(0.001, 0.03, targets)
    cut = np.array([np.quantile(logits[:, j], 1 - rate[j]) for j in range(targets)])
    y = (logits > cut).astype(int)
    y[train["cp_type"].to_numpy() == "ctl_vehicle"] = 0
    cols = [f"target_{j}" for j in range(targets)]
    scored = pd.DataFrame(y, columns=cols)
    scored.insert(0, "sig_id", train["sig_id"])
    nonscored = scored.iloc[:, :11].rename(columns={c: f"ns_{c}" for c in cols[:10]})
    drug = pd.DataFrame({"sig_id": train["sig_id"], "drug_id": [f"d{i % 3000:04d}" for i in range(n)]})
    sample = pd.DataFrame(0.5, index=range(n_test), columns=cols)
    sample.insert(0, "sig_id", test["sig_id"])
    for df, name in (
        (train, "train_features.csv"),
        (test, "test_features.csv"),
        (scored, "train_targets_scored.csv"),
        (nonscored, "train_targets_nonscored.csv"),
        (drug, "train_drug.csv"),
        (sample, "sample_submission.csv"),
    ):
        df.to_csv(folder / name, index=False, float_format="%.5f")


def experiment(data: Path, a: argparse.Namespace):
    from molremote.experiments import validate

    return validate(
        {
            "id": 9901,
            "slug": "moa_bench",
            "task": {"name": "moa", "quantile": False, "label_smoothing": 0.001},
            "model": {"name": "tabular_mlp", "hidden": a.hidden},
            "training": {
                "epochs": a.epochs + 1,
                "batch_size": a.batch,
                "lr": 5e-3,
                "weight_decay": 1e-5,
                "optimizer": "adam",
                "scheduler": "onecycle",
                "max_lr": 1e-2,
                "pct_start": 0.2,
                "div_factor": 1e3,
                "device": "cpu",
                "threads": a.threads,
                "seed": 0,
            },
            "folds": {"n_folds": 5, "scheme": "kfold"},
            "data": {"root": str(data)},
        },
        file=None,
    )


def run_trainer(data: Path, a: argparse.Namespace) -> dict:
    import torch

    from molremote.runs import Run
    from molremote.training.trainer import Trainer, _progress

    exp = experiment(data, a)
    with tempfile.TemporaryDirectory() as tmp:
        run = Run.create_or_open(exp, 0, root=Path(tmp))
        tr = Trainer(exp, 0, run, progress=False, echo=lambda m: None)
        tr.stop.install()
        tr.setup()
        first_loss = float(tr.task.loss(tr.model, tr.task.batch("train", tr.train_idx[: a.batch], tr.device)))
        times, samples = [], 0
        with _progress(False) as bar:
            while tr.epoch < tr.t.epochs:
                t0 = time.perf_counter()
                tr.train_epoch(bar)
                dt = time.perf_counter() - t0
                if tr.epoch > 0:  # epoch 1 warms up
                    times.append(dt)
                    samples += tr.seen
                tr.validate()
        tr.stop.uninstall()
    return {
        "side": "trainer",
        "samples_per_s": samples / sum(times),
        "epoch_s": times,
        "steps_per_epoch": tr.steps_per_epoch,
        "first_loss": first_loss,
        "threads": torch.get_num_threads(),
    }


def run_plain(data: Path, a: argparse.Namespace) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from molremote.models import build_model
    from molremote.tasks import get_task

    exp = experiment(data, a)
    torch.set_num_threads(a.threads)
    task = get_task(exp)
    task.load()
    train_idx, _ = task.split(0)
    with tempfile.TemporaryDirectory() as tmp:
        task.prepare_fold(0, train_idx, Path(tmp))  # the same features the trainer sees
    x = torch.from_numpy(np.ascontiguousarray(task.x_train[train_idx]))
    y = torch.from_numpy(np.ascontiguousarray(task.y[train_idx]))
    torch.manual_seed(0)  # the trainer's seed_everything(seed + 1000 * fold) with seed 0, fold 0
    model = build_model(exp, task.model_info())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2 / 1e3, weight_decay=1e-5)
    steps = len(train_idx) // a.batch + (len(train_idx) % a.batch >= 2)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=1e-2, total_steps=(a.epochs + 1) * steps, pct_start=0.2, div_factor=1e3
    )
    loader = DataLoader(TensorDataset(x, y), batch_size=a.batch, shuffle=True, drop_last=False, num_workers=0)
    s = 0.001
    model.train()
    first_loss = float(F.binary_cross_entropy_with_logits(model(x[: a.batch]), y[: a.batch] * (1 - s) + 0.5 * s))
    times, samples = [], 0
    for epoch in range(a.epochs + 1):
        seen = 0
        t0 = time.perf_counter()
        for xb, yb in loader:
            if len(xb) < 2:  # a 1-row batch breaks BatchNorm, as in the trainer
                continue
            loss = F.binary_cross_entropy_with_logits(model(xb), yb * (1 - s) + 0.5 * s)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(xb)
        dt = time.perf_counter() - t0
        if epoch > 0:
            times.append(dt)
            samples += seen
    return {
        "side": "plain",
        "samples_per_s": samples / sum(times),
        "epoch_s": times,
        "steps_per_epoch": steps,
        "first_loss": first_loss,
        "threads": torch.get_num_threads(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20000, help="training rows (lish-moa: 23,814)")
    ap.add_argument("--test-rows", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=2048, help="MLP width (the winners' 2048)")
    ap.add_argument("--batch", type=int, default=256, help="the winners' batch size")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch")
    # 1 by default: on a shared, loaded 2-core machine two intra-op threads per process make both sides 20-30x
    # slower (measured: 130 vs 3,700 samples/s at load ~13), which hides any loop overhead
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1, help="alternating trainer / plain pairs")
    ap.add_argument("--keep", type=Path, help="folder for the generated CSVs (reused when present)")
    ap.add_argument("--child", choices=["trainer", "plain"], help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        os.environ.setdefault("MOLREMOTE_PROJECT", str(ROOT))
        out = run_trainer(a.data, a) if a.child == "trainer" else run_plain(a.data, a)
        print(json.dumps(out))
        return 0
    with tempfile.TemporaryDirectory(prefix="moa-bench-") as tmp:
        data = a.keep or Path(tmp) / "moa"
        t0 = time.perf_counter()
        make_data(data, a.rows, a.test_rows)
        print(f"data: {a.rows:,} x 875 MoA-shaped rows in {data} ({time.perf_counter() - t0:.1f} s)", flush=True)
        args = [
            *("--hidden", str(a.hidden), "--batch", str(a.batch), "--epochs", str(a.epochs)),
            *("--threads", str(a.threads), "--data", str(data)),
        ]
        env = {**os.environ, "MOLREMOTE_TRACKING": "disabled", "PYTHONPATH": str(ROOT)}
        results: dict[str, list[dict]] = {"trainer": [], "plain": []}
        for r in range(a.rounds):
            for side in ("trainer", "plain") if r % 2 == 0 else ("plain", "trainer"):
                cp = subprocess.run(
                    [sys.executable, __file__, "--child", side, *args], capture_output=True, text=True, env=env
                )
                if cp.returncode != 0:
                    sys.exit(f"{side} failed:\n{cp.stderr[-3000:]}")
                res = json.loads(cp.stdout.strip().splitlines()[-1])
                results[side].append(res)
                print(
                    f"round {r + 1} {side:7s}: {res['samples_per_s']:9,.0f} samples/s  "
                    f"epochs {', '.join(f'{t:.2f}' for t in res['epoch_s'])} s  ({res['steps_per_epoch']} steps/epoch, "
                    f"{res['threads']} threads)",
                    flush=True,
                )
    med = {k: sorted(x["samples_per_s"] for x in v)[len(v) // 2] for k, v in results.items()}
    ratio = med["plain"] / med["trainer"]
    print(
        f"median: trainer {med['trainer']:,.0f} samples/s, plain DataLoader loop {med['plain']:,.0f} samples/s; "
        f"trainer overhead (time per sample, trainer / plain) {ratio:.3f}x"
    )
    losses = {k: v[0]["first_loss"] for k, v in results.items()}
    if abs(losses["trainer"] - losses["plain"]) > 1e-4:
        print(f"MISMATCH first-step loss: {losses}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
