"""Trainer behaviour: run folder, resume after deadline / signals / SIGKILL (bit-identical), checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, write_experiment
from tests.training import toy

TOY = """EXPERIMENT = experiment(task={{"name": "toy"{task}}}, model="toy_mlp",
    training={{"epochs": {epochs}, "lr": 0.01, "log_every_steps": 1, {training}}},
    folds={{"n_folds": 4}})
"""


def toy_exp(project: Path, i: int = 1, epochs: int = 3, task: str = "", training: str = '"batch_size": 16') -> None:
    write_experiment(project, f"{i:04d}_toy.py", TOY.format(epochs=epochs, task=task, training=training))


def cli(project: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "MOLREMOTE_PROJECT": str(project), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tests.training.toy", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def popen(project: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MOLREMOTE_PROJECT": str(project), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.training.toy", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stable_metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "samples_per_s")} for r in rows]


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.fixture(autouse=True)
def _toy_registered():
    toy.register()


def test_complete_run_writes_the_folder_layout(project):
    toy_exp(project)
    r = cli(project, "train", "-e", "1")
    assert r.returncode == 0, r.stderr
    run_dir = Path(r.stdout.strip().splitlines()[-1])
    assert run_dir.parent.name == "0001_toy" and run_dir.name.startswith("fold0-")
    for rel in (
        "manifest.json",
        "config.json",
        "metrics.jsonl",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
        "predictions/valid.npz",
        "predictions/test.npz",
        "submission.csv",
        "logs/train.log",
    ):
        assert (run_dir / rel).is_file(), rel
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "complete" and m["fold"] == 0 and m["experiment"] == 1
    assert m["config_hash"] == run_dir.name.split("-")[1]
    assert m["best"]["metric"] == "acc" and m["best"]["value"] > m["baseline"]  # learned something
    assert m["machine"]["hostname"] and "commit" in m["code"] and m["started_at"] and m["ended_at"]
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["id"] == 1 and cfg["config_hash"] == m["config_hash"]
    assert len((run_dir / "submission.csv").read_text().splitlines()) == 65

    # a finished run is left alone
    mtime = (run_dir / "checkpoints/last.pt").stat().st_mtime_ns
    again = cli(project, "train", "-e", "1")
    assert again.returncode == 0 and "already complete" in again.stderr
    assert (run_dir / "checkpoints/last.pt").stat().st_mtime_ns == mtime

    # --restart keeps the old run aside, byte for byte, and trains a new one in its place
    # (`.lock` is bookkeeping: it names whichever process last held the run, e.g. the "already complete" check)
    before = {
        p.relative_to(run_dir).as_posix(): p.read_bytes()
        for p in run_dir.rglob("*")
        if p.is_file() and p.name != ".lock"
    }
    re = cli(project, "train", "-e", "1", "--restart")
    assert re.returncode == 0, re.stderr
    aside = [p for p in run_dir.parent.iterdir() if ".replaced-" in p.name]
    assert len(aside) == 1 and aside[0].name.startswith(run_dir.name + ".replaced-")
    kept = {
        p.relative_to(aside[0]).as_posix(): p.read_bytes()
        for p in aside[0].rglob("*")
        if p.is_file() and p.name != ".lock"
    }
    assert kept == before
    new = json.loads((run_dir / "manifest.json").read_text())
    assert new["status"] == "complete" and new["run_uid"] != m["run_uid"]


def test_set_override_changes_hash_and_is_recorded(project):
    toy_exp(project)
    r = cli(project, "train", "-e", "1", "--set", "training.epochs=1", "--set", "model.hidden=8")
    assert r.returncode == 0, r.stderr
    run_dir = Path(r.stdout.strip().splitlines()[-1])
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["overrides"] == ["training.epochs=1", "model.hidden=8"]
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["training"]["epochs"] == 1 and cfg["model"]["hidden"] == 8
    bad = cli(project, "train", "-e", "1", "--set", "training.epoch=1")
    assert bad.returncode == 2 and "training.epoch" in bad.stderr and "epochs" in bad.stderr
    bad = cli(project, "train", "-e", "1", "--set", "training.epochs=many")
    assert bad.returncode == 2 and "training.epochs" in bad.stderr


def test_deadline_exits_75_and_resume_matches_uninterrupted(project, tmp_path):
    toy_exp(project, epochs=2, task=', "sleep_s": 0.04', training='"batch_size": 32')
    ref = cli(project, "train", "-e", "1")
    assert ref.returncode == 0, ref.stderr
    ref_dir = Path(ref.stdout.strip().splitlines()[-1])
    os.replace(ref_dir, tmp_path / "ref")

    first = cli(project, "train", "-e", "1", "--max-time", "0.5s")
    assert first.returncode == 75, first.stderr
    run_dir = Path(first.stdout.strip().splitlines()[-1])
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "incomplete"
    sessions = 1
    for limit in ("2.5s", None):  # chain sessions until complete, as backends do: a short one, then to the end
        r = cli(project, "train", "-e", "1", *(("--max-time", limit) if limit else ()))
        sessions += 1
        if r.returncode == 0:
            break
        assert r.returncode == 75 and limit, r.stderr
    assert r.returncode == 0, r.stderr
    assert_same_weights(run_dir / "checkpoints/last.pt", tmp_path / "ref/checkpoints/last.pt")
    assert_same_weights(run_dir / "checkpoints/best.pt", tmp_path / "ref/checkpoints/best.pt")
    assert stable_metrics(run_dir) == stable_metrics(tmp_path / "ref")
    m = json.loads((run_dir / "manifest.json").read_text())
    assert len(m["sessions"]) == sessions


def _wait_for_mid_epoch_checkpoint(run_glob, proc, min_pos: int = 2, timeout: float = 60) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()
        for last in run_glob():
            try:
                s = torch.load(last, map_location="cpu", weights_only=False)
            except Exception:
                continue
            if s["epoch"] >= 1 and s["pos"] >= min_pos:
                return
        time.sleep(0.05)
    raise AssertionError("no mid-epoch checkpoint appeared")


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_bit_identical(project, tmp_path):
    toy_exp(project, task=', "sleep_s": 0.01', training='"batch_size": 16, "checkpoint_every_steps": 3')
    ref = cli(project, "train", "-e", "1")
    assert ref.returncode == 0, ref.stderr
    ref_dir = Path(ref.stdout.strip().splitlines()[-1])
    os.replace(ref_dir, tmp_path / "ref")

    proc = popen(project, "train", "-e", "1")
    _wait_for_mid_epoch_checkpoint(lambda: list((project / "runs").glob("0001_toy/fold0-*/checkpoints/last.pt")), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = next((project / "runs").glob("0001_toy/fold0-*"))
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "running"  # died without a word
    r = cli(project, "train", "-e", "1")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr
    assert_same_weights(run_dir / "checkpoints/last.pt", tmp_path / "ref/checkpoints/last.pt")
    assert_same_weights(run_dir / "checkpoints/best.pt", tmp_path / "ref/checkpoints/best.pt")
    assert stable_metrics(run_dir) == stable_metrics(tmp_path / "ref")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_checkpoints_and_exits_75(project, sig):
    toy_exp(project, epochs=50, task=', "sleep_s": 0.01')
    proc = popen(project, "train", "-e", "1")
    _wait_for_mid_epoch_checkpoint(
        lambda: list((project / "runs").glob("0001_toy/fold0-*/checkpoints/last.pt")), proc, min_pos=0
    )
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    run_dir = Path(out.strip().splitlines()[-1])
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "incomplete" and m["stop_reason"] == sig.name


def test_corrupt_last_checkpoint_falls_back_then_refuses(project):
    toy_exp(project, epochs=2)
    r = cli(project, "train", "-e", "1", "--max-time", "0s")  # stops after the first step
    assert r.returncode == 75
    run_dir = Path(r.stdout.strip().splitlines()[-1])
    r = cli(project, "train", "-e", "1", "--max-time", "0s")
    assert r.returncode == 75
    ck = run_dir / "checkpoints"
    assert (ck / "last.prev.pt").is_file()
    (ck / "last.pt").write_bytes(b"truncated")
    r = cli(project, "train", "-e", "1")
    assert r.returncode == 0, r.stderr
    assert "unreadable" in r.stderr  # warned, resumed from last.prev.pt

    toy_exp(project, i=2, epochs=2)
    r = cli(project, "train", "-e", "2", "--max-time", "0s")
    run2 = Path(r.stdout.strip().splitlines()[-1])
    (run2 / "checkpoints/last.pt").write_bytes(b"garbage")
    r = cli(project, "train", "-e", "2")
    assert r.returncode == 4 and "no usable checkpoint" in r.stderr and "last.pt" in r.stderr
    assert (run2 / "checkpoints/last.pt").read_bytes() == b"garbage"  # nothing overwritten


def test_early_stopping_ends_a_run_that_stops_improving(project):
    # lr 0: the validation metric never improves after the first epoch
    toy_exp(project, epochs=10, training='"batch_size": 64, "lr": 0.0, "early_stopping_patience": 1')
    r = cli(project, "train", "-e", "1")
    assert r.returncode == 0, r.stderr
    assert "early stopping: no improvement in 2 epochs" in r.stderr
    run_dir = Path(r.stdout.strip().splitlines()[-1])
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "complete" and m["best"]["epoch"] == 0
    epochs = [row["epoch"] for row in stable_metrics(run_dir) if "valid_acc" in row]
    assert epochs == [0, 1, 2]
