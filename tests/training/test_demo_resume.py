"""The README's resume and run-identity claims, with the shipped demo experiment (cnn1d on BELKA demo data)
trained through the real CLI in subprocesses: `kill -9` mid-epoch then the same command gives the weights and
metrics of an uninterrupted run, and a changed config is a new run folder that leaves the old one untouched."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.training.test_trainer import assert_same_weights, stable_metrics

# 2 epochs of 26 steps: long enough to be killed mid-epoch after a step checkpoint, short on 2 cores.
SETS = ["--set", "training.epochs=2", "--set", "training.checkpoint_every_steps=4"]


def _env(runs: Path) -> dict[str, str]:
    env = {**os.environ, "MOLREMOTE_PROJECT": str(ROOT), "MOLREMOTE_RUNS": str(runs)}
    env.pop("MOLREMOTE_STORE", None)
    return env


def train(runs: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "molremote", "train", "-e", "1", *extra],
        env=_env(runs),
        capture_output=True,
        text=True,
        timeout=600,
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
@pytest.mark.integration
def test_demo_sigkill_resume_equals_uninterrupted_and_changed_config_keeps_old_run(tmp_path):
    runs = tmp_path / "runs"
    ref = train(runs, *SETS)
    assert ref.returncode == 0, ref.stderr
    ref_dir = Path(ref.stdout.strip().splitlines()[-1])
    os.replace(ref_dir, tmp_path / "ref")

    proc = subprocess.Popen(
        [sys.executable, "-m", "molremote", "train", "-e", "1", *SETS],
        env=_env(runs),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    state = None
    while time.monotonic() < deadline and proc.poll() is None:
        ckpt = list(runs.glob("0001_belka_demo_cnn1d/fold0-*/checkpoints/last.pt"))
        if ckpt:
            import torch

            try:
                s = torch.load(ckpt[0], map_location="cpu", weights_only=False)
            except Exception:  # being replaced right now
                s = None
            if s is not None and s["epoch"] >= 1 and s["pos"] > 0:  # mid-epoch, after the first epoch's end
                state = (s["epoch"], s["pos"])
                break
        time.sleep(0.05)
    assert proc.poll() is None and state is not None, "no mid-epoch checkpoint before the run ended"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = next(runs.glob("0001_belka_demo_cnn1d/fold0-*"))
    assert not (run_dir / "submission.csv").exists()  # it died before finishing

    r = train(runs, *SETS)
    assert r.returncode == 0, r.stderr
    assert "resum" in r.stderr.lower()
    assert_same_weights(run_dir / "checkpoints/last.pt", tmp_path / "ref/checkpoints/last.pt")
    assert_same_weights(run_dir / "checkpoints/best.pt", tmp_path / "ref/checkpoints/best.pt")
    assert stable_metrics(run_dir) == stable_metrics(tmp_path / "ref")
    assert (run_dir / "submission.csv").read_bytes() == (tmp_path / "ref/submission.csv").read_bytes()

    # A changed config is a new run; the old folder and its files are kept as they were.
    before = {p.relative_to(run_dir): digest(p) for p in run_dir.rglob("*") if p.is_file() and "logs" not in p.parts}
    other = train(runs, "--set", "training.epochs=1")
    assert other.returncode == 0, other.stderr
    other_dir = Path(other.stdout.strip().splitlines()[-1])
    assert other_dir != run_dir and other_dir.parent == run_dir.parent
    after = {p.relative_to(run_dir): digest(p) for p in run_dir.rglob("*") if p.is_file() and "logs" not in p.parts}
    assert after == before
    assert json.loads((other_dir / "manifest.json").read_text())["epochs"] == 1
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
