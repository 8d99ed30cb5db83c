"""Experiment 5 through the real CLI: training on the shipped KIBA sample, all metrics written next to the
predictions and equal to a recomputation from the files, evaluate and an ensemble by pair id; the real-data
experiments refuse with exit 3 and the download command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molremote.tasks.affinity import metrics as am
from molremote.tasks.affinity.data import read_predictions
from molremote.tasks.base import DEMO_ROOT

ROOT = Path(__file__).resolve().parents[3]
ENV = {"OMP_NUM_THREADS": "1", "MOLREMOTE_TRACKING": "disabled", "WANDB_MODE": "disabled"}


def cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "molremote", *args],
        cwd=project,
        env={**os.environ, **ENV, "MOLREMOTE_PROJECT": str(project)},
        capture_output=True,
        text=True,
        timeout=400,
    )


def with_experiments(project: Path, *names: str) -> None:
    for n in names:
        shutil.copy(ROOT / "experiments" / n, project / "experiments" / n)


@pytest.mark.slow  # train + evaluate + ensemble processes: ~40-70 s on a busy 2-core machine
@pytest.mark.integration
def test_experiment_5_trains_scores_evaluates_and_ensembles(project):
    with_experiments(project, "0005_affinity_demo_clip.py")
    sets = ["--set", "training.epochs=3"]
    r = cli(project, "train", "-e", "5", *sets, "--no-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    run = Path(r.stdout.strip().splitlines()[-1])
    m = json.loads((run / "manifest.json").read_text())
    best = m["best"]["value"]
    valid = json.loads((run / "predictions" / "valid_metrics.json").read_text())
    # recomputed from the prediction file: the trainer's best epoch is what finish() predicted with
    pred = read_predictions(run / "predictions" / "valid.parquet")
    assert len(pred["id"]) == 800 and valid["recall_at_10"] == pytest.approx(best, abs=1e-12)
    assert valid["retrieval"] == pytest.approx(
        am.retrieval(pred["prot_id"], pred["lig_id"], pred["prot_emb"], pred["lig_emb"])
    )
    assert valid["regression"]["pearson"] == pytest.approx(am.pearson(pred["y"], pred["affinity"]), abs=1e-12)
    # three epochs already beat a random ranking and the mean predictor on the same pairs
    assert valid["recall_at_10"] > 1.5 * valid["random_recall_at_10"]
    assert valid["regression"]["pearson"] > 0.2 and valid["regression"]["rmse"] < valid["mean_predictor"]["rmse"]
    assert valid["contrastive_loss"] > 0 and np.isfinite(valid["contrastive_loss"])
    test = pd.read_parquet(DEMO_ROOT / "affinity" / "test.parquet")
    sub = pd.read_csv(run / "submission.csv")
    assert sub.columns.tolist() == ["id", "affinity"] and sub.id.tolist() == list(range(len(test)))
    assert (run / "predictions" / "test_metrics.json").exists()
    # evaluate: the fold score from the file equals the trainer's; ensemble by pair id
    r = cli(project, "evaluate", "-e", "5", *sets, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    ev = json.loads(r.stdout)
    assert ev["task"] == "affinity" and ev["metric"] == "recall_at_10"
    assert ev["fold_scores"]["0"] == pytest.approx(best, abs=1e-12)
    out = project / "ens"
    r = cli(project, "ensemble", "-i", str(run / "submission.csv"), "-i", ev["submission"], "-o", str(out), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    ens = json.loads(r.stdout)
    assert ens["task"] == "affinity"
    merged = pd.read_csv(next(out.glob("*.csv")) if out.is_dir() else ens["submission"])
    assert np.allclose(merged.sort_values("id").affinity.to_numpy(), sub.affinity.to_numpy(), atol=1e-6)


@pytest.mark.integration
@pytest.mark.parametrize("exp", ["0400_affinity_reference_esm2.py", "0420_affinity_reference_slurm_1h.py"])
def test_real_data_experiments_refuse_with_exit_3_and_how_to_get_the_data(project, exp):
    with_experiments(project, "0400_affinity_reference_esm2.py", exp)
    r = cli(project, "train", "-e", exp[:4].lstrip("0"), "--no-progress")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "data/affinity/data/all.parquet not found" in r.stderr
    assert "huggingface-cli download jglaser/binding_affinity --repo-type dataset" in r.stderr
    assert not (project / "runs").exists() or not any((project / "runs").iterdir())


def test_experiment_420_renders_a_one_hour_requeueing_sbatch_script(project):
    with_experiments(project, "0400_affinity_reference_esm2.py", "0420_affinity_reference_slurm_1h.py")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "p"\nversion = "0"\n[project.optional-dependencies]\ntrain = []\n'
    )
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=project, check=True)  # the code a backend ships
    r = cli(project, "remote", "-e", "420", "--slurm", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    for line in ("#SBATCH --time=01:00:00", "#SBATCH --signal=B:USR1@300", "#SBATCH --requeue", "#SBATCH --gres=gpu:1"):
        assert line in r.stdout
    assert "MAX_RESTARTS=40" in r.stdout
