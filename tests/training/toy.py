"""A tiny deterministic task + model for trainer tests (registered at test time, not shipped).

`python -m tests.training.toy train ...` runs the real CLI with the toy task registered, so subprocess tests
(kill -9, signals) exercise the real entry point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from molremote.models import MODELS
from molremote.registry import Entry
from molremote.tasks import TASKS
from molremote.tasks.base import Task


class ToyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    n: int = 512
    n_test: int = 64
    dim: int = 8
    sleep_s: float = 0.0  # per training batch: lets subprocess tests interrupt mid-epoch


class ToyModelParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    hidden: int = 16
    dropout: float = 0.2  # dropout makes the RNG state matter for exact resume


class ToyTask(Task):
    name = "toy"
    metric_name = "acc"

    def load(self) -> None:
        rng = np.random.default_rng(0)
        p = self.params
        self.x = rng.normal(size=(p.n + p.n_test, p.dim)).astype(np.float32)
        w = rng.normal(size=p.dim)
        self.y = (self.x @ w > 0).astype(np.float32)

    def n_train(self) -> int:
        return self.params.n

    def n_test(self) -> int:
        return self.params.n_test

    def fold_assignment(self) -> np.ndarray:
        return np.arange(self.params.n) % self.exp.folds.n_folds

    def model_info(self) -> dict:
        return {"dim": self.params.dim}

    def prepare_fold(self, fold, train_idx, run_dir) -> None:
        """Logs each process's start and end (tests check that under DDP rank 0 prepares before the others)."""
        import os
        import time

        log = Path(run_dir) / "prepare.log"
        rank = os.environ.get("RANK", "0")
        with open(log, "a") as f:
            f.write(f"start {rank}\n")
        time.sleep(0.3)  # a slow fit: another rank preparing meanwhile would interleave
        with open(log, "a") as f:
            f.write(f"end {rank}\n")

    def batch(self, split, idx, device):
        import time

        import torch

        if split == "train" and self.params.sleep_s:
            time.sleep(self.params.sleep_s)

        off = 0 if split == "train" else self.params.n
        return torch.from_numpy(self.x[idx + off]).to(device), torch.from_numpy(self.y[idx + off]).to(device)

    def loss(self, model, batch):
        import torch.nn.functional as F

        x, y = batch
        return F.binary_cross_entropy_with_logits(model(x).squeeze(-1), y)

    def predict(self, model, batch):
        return {"p": model(batch[0]).squeeze(-1).sigmoid().cpu().numpy()}

    def score(self, valid_idx, outputs) -> float:
        return float(((outputs["p"] > 0.5) == (self.y[valid_idx] > 0.5)).mean())

    def baseline_score(self, valid_idx):
        return float(max(self.y[valid_idx].mean(), 1 - self.y[valid_idx].mean()))

    def write_predictions(self, out_dir: Path, split, idx, outputs) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        p = out_dir / f"{split}.npz"
        np.savez(p, idx=idx, p=outputs["p"])
        return p

    def write_submission(self, path: Path, test_outputs) -> Path:
        path.write_text("id,p\n" + "".join(f"{i},{v:.6f}\n" for i, v in enumerate(test_outputs["p"])))
        return path


def build(params: ToyModelParams, info: dict):
    import torch.nn as nn

    return nn.Sequential(
        nn.Linear(info["dim"], params.hidden), nn.ReLU(), nn.Dropout(params.dropout), nn.Linear(params.hidden, 1)
    )


def register() -> None:
    TASKS["toy"] = Entry("tests.training.toy:ToyParams", "tests.training.toy:ToyTask")
    MODELS["toy_mlp"] = Entry("tests.training.toy:ToyModelParams", "tests.training.toy:build")


if __name__ == "__main__":
    register()
    from molremote.cli import main

    main()
