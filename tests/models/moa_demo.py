"""Shared by the MoA model tests: train a shipped demo experiment in-process for a few steps (uninterrupted, and
stopped after one step then resumed), and evaluate the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from molremote.experiments import load
from molremote.results.evaluate import evaluate_runs
from molremote.training.launch import train_fold

ROOT = Path(__file__).resolve().parents[2]


def demo_experiment(i: int, *sets: str):
    return load(i, [*sets, "training.threads=1"], directory=ROOT / "experiments")


def weights(run_dir: Path, name: str = "last.pt") -> dict:
    return torch.load(run_dir / "checkpoints" / name, map_location="cpu", weights_only=False)["model"]


def train_uninterrupted_and_resumed(exp, tmp_path: Path) -> tuple[Path, Path]:
    """(the run folder of an uninterrupted run, that of a run stopped by its deadline after its first step and
    resumed by a second session); callers compare them."""
    ref = train_fold(exp, 0, progress=False, root=tmp_path / "ref")
    assert ref.exit_code == 0
    first = train_fold(exp, 0, progress=False, root=tmp_path / "resumed", max_time_s=0.0)
    assert first.exit_code == 75  # stopped at the first step's check, checkpoint saved
    state = torch.load(first.run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    assert (state["epoch"], state["pos"]) == (0, 1)
    second = train_fold(exp, 0, progress=False, root=tmp_path / "resumed")
    assert second.exit_code == 0
    return ref.run_dir, second.run_dir


def assert_same_run(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert stable_metrics(a) == stable_metrics(b)


def stable_metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "samples_per_s")} for r in rows]


def evaluate(run_dir: Path, n_targets: int = 14) -> float:
    ev = evaluate_runs([run_dir], out_dir=run_dir.parent / "eval")
    assert ev.metric == "logloss" and ev.submission is not None and ev.submission.exists()
    score = ev.fold_scores[0]
    assert np.isfinite(score) and 0 < score < 2
    return float(score)
