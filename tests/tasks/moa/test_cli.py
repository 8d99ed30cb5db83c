"""Experiment 3 through the real CLI: one epoch, evaluate, ensemble of the files; a run killed mid-training
resumes with the saved preprocessing (identical features: bit-identical weights to an uninterrupted run);
the real-data experiment refuses with exit 3 and the download command."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molremote.results.submission_files import check_submission
from molremote.tasks.moa.metric import mean_columnwise_log_loss
from molremote.tasks.moa.results import read_valid, submission_spec

from .conftest import DEMO

ROOT = Path(__file__).resolve().parents[3]
ENV = {"OMP_NUM_THREADS": "1", "MOLREMOTE_TRACKING": "disabled", "WANDB_MODE": "disabled"}


def with_experiments(project: Path, *names: str) -> Path:
    for n in names:
        shutil.copy(ROOT / "experiments" / n, project / "experiments" / n)
    return project


def cmd(project: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "molremote", *args]


def env(project: Path) -> dict[str, str]:
    return {**os.environ, **ENV, "MOLREMOTE_PROJECT": str(project)}


def cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd(project, *args), cwd=project, env=env(project), capture_output=True, text=True, check=False, timeout=300
    )


@pytest.mark.slow  # two CLI processes (train imports torch): 20-30 s on a busy 2-core machine
@pytest.mark.integration
def test_experiment_3_trains_one_epoch_then_evaluates_and_ensembles(project):
    with_experiments(project, "0003_moa_demo_mlp.py")
    one_epoch = ["--set", "training.epochs=1", "--set", "training.threads=1"]
    r = cli(project, "train", "-e", "3", *one_epoch, "--no-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    r = cli(project, "evaluate", "-e", "3", *one_epoch, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    ev = json.loads(r.stdout)
    assert ev["task"] == "moa" and ev["metric"] == "logloss" and ev["greater_is_better"] is False
    run = project / "runs" / ev["runs"][0]["run_key"]
    _, _, y, p = read_valid(run / "predictions" / "valid.parquet")
    assert ev["fold_scores"]["0"] == pytest.approx(mean_columnwise_log_loss(y, p), abs=1e-12)
    assert 0 < ev["fold_scores"]["0"] < 0.7  # one epoch from ln 2 = 0.693 (a logit of 0)
    assert (run / "preprocess" / "preprocess.pkl").exists()
    sample = pd.read_csv(DEMO / "sample_submission.csv")
    sub = check_submission(
        ev["submission"], submission_spec(list(sample.columns[1:])), expected_ids=sample["sig_id"].to_numpy()
    )
    assert sub.values.shape == (len(sample), 14)
    ens = cli(
        project,
        "ensemble",
        "-i",
        ev["submission"],
        "-i",
        str(run / "submission.csv"),
        "-o",
        str(project / "files"),
        "--json",
    )
    assert ens.returncode == 0, ens.stdout + ens.stderr
    assert json.loads(ens.stdout)["task"] == "moa"  # recognised from the sig_id header alone


REAL_DATA = {
    200: "0200_moa_1st_simple_nn.py",
    210: "0210_moa_1st_tabnet.py",
    220: "0220_moa_1st_two_heads.py",
    230: "0230_moa_1st_deepinsight_effnet.py",
    231: "0231_moa_1st_deepinsight_resnest.py",
}


@pytest.mark.integration
def test_real_data_experiment_refuses_with_exit_3_and_the_download_command(project):
    with_experiments(project, "0200_moa_1st_simple_nn.py")
    r = cli(project, "train", "-e", "200", "--no-progress")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "data/moa/train_features.csv not found" in r.stderr
    assert "kaggle competitions download -c lish-moa" in r.stderr


@pytest.mark.parametrize("exp_id", sorted(REAL_DATA))
def test_every_real_data_experiment_refuses_before_making_a_run_folder(project, exp_id):
    """The same refusal for each 02xx experiment, in-process (the CLI's exit 3 for it is the test above)."""
    from molremote.errors import EXIT_DATA, DataError
    from molremote.experiments import load
    from molremote.training.launch import train_fold

    with_experiments(project, *REAL_DATA.values())  # 231 derives from 230
    exp = load(exp_id)
    with pytest.raises(DataError) as e:
        train_fold(exp, 0, progress=False)
    assert e.value.exit_code == EXIT_DATA == 3
    assert "data/moa/train_features.csv not found" in str(e.value)
    assert "kaggle competitions download -c lish-moa" in str(e.value)
    assert not (project / "runs").exists() or not any((project / "runs").rglob("manifest.json"))


def _weights(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)["model"]


@pytest.mark.slow  # three CLI processes training on a busy 2-core machine: 30-60 s
@pytest.mark.integration
def test_a_killed_run_resumes_with_the_saved_preprocessing_and_identical_results(tmp_path):
    import torch

    sets = [
        "--set",
        "training.epochs=3",
        "--set",
        "training.batch_size=16",
        "--set",
        "training.threads=1",
        "--set",
        "training.checkpoint_every_steps=1",
        "--set",
        "task.fa_genes=4",
        "--no-progress",
    ]
    projects = []
    for name in ("ref", "killed"):
        p = tmp_path / name
        (p / "experiments").mkdir(parents=True)
        projects.append(with_experiments(p, "0003_moa_demo_mlp.py"))
    ref, killed = projects
    r = cli(ref, "train", "-e", "3", *sets)
    assert r.returncode == 0, r.stderr

    proc = subprocess.Popen(
        cmd(killed, "train", "-e", "3", *sets),
        cwd=killed,
        env=env(killed),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list(killed.glob("runs/0003_moa_demo_mlp/fold0-*/checkpoints/last.pt")):
        assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint before the run ended"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = next(killed.glob("runs/0003_moa_demo_mlp/fold0-*"))
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"  # died mid-training
    files = sorted((run / "preprocess").iterdir())
    assert [f.name for f in files] == ["features.npz", "preprocess.json", "preprocess.pkl"]
    saved = [(f.stat().st_mtime_ns, f.read_bytes()) for f in files]

    r = cli(killed, "train", "-e", "3", *sets)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr
    assert [(f.stat().st_mtime_ns, f.read_bytes()) for f in files] == saved  # loaded, not refitted
    ref_run = next(ref.glob("runs/0003_moa_demo_mlp/fold0-*"))
    for ck in ("last.pt", "best.pt"):
        a, b = _weights(run / "checkpoints" / ck), _weights(ref_run / "checkpoints" / ck)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), ck
    va, vb = (pd.read_parquet(d / "predictions" / "valid.parquet") for d in (run, ref_run))
    pd.testing.assert_frame_equal(va, vb)
    assert np.isfinite(va.drop(columns="sig_id").to_numpy()).all()
