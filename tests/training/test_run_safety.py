"""One writer per run, contained corruption, resume messages that resume: real processes, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.training import toy
from tests.training.test_trainer import cli, popen, toy_exp


@pytest.fixture(autouse=True)
def _toy_registered():
    toy.register()


def _run_dir(project: Path) -> Path:
    return next(p for p in (project / "runs").glob("0001_toy/fold0-*") if ".replaced-" not in p.name)


def _wait_training(project: Path, proc, timeout: float = 300) -> Path:
    """Until the trainer has started its session (it took the lock before that) and done a step."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        for run_dir in (project / "runs").glob("0001_toy/fold0-*"):
            try:
                m = json.loads((run_dir / "manifest.json").read_text())
            except (OSError, ValueError):
                continue
            if m.get("status") == "running" and (run_dir / "metrics.jsonl").is_file():
                return run_dir
        time.sleep(0.1)
    raise AssertionError("the trainer did not start")


def _ls_status(project: Path) -> str:
    r = cli(project, "ls", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]["status"]


@pytest.mark.slow  # six trainer processes one after another: ~25 s on a quiet 2-core machine
def test_second_trainer_refused_waits_with_wait_and_killed_run_shows_stopped(project):
    toy_exp(project, epochs=50, task=', "sleep_s": 0.01')
    first = popen(project, "train", "-e", "1")
    _wait_training(project, first)

    second = cli(project, "train", "-e", "1")  # refused at once, nothing written into the run
    assert second.returncode == 9, second.stderr
    assert f"pid {first.pid} on " in second.stderr and "--wait" in second.stderr
    run_dir = _run_dir(project)
    m = json.loads((run_dir / "manifest.json").read_text())
    assert len(m["sessions"]) == 1 and m["status"] == "running"

    err_file = project / "waiter.err"
    env = {**os.environ, "MOLREMOTE_PROJECT": str(project), "PYTHONPATH": str(ROOT)}
    with open(err_file, "w") as err_out:
        waiter = subprocess.Popen(
            [sys.executable, "-m", "tests.training.toy", "train", "-e", "1", "--wait", "--max-time", "0s"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err_out,
        )
    deadline = time.time() + 240
    while "waiting for" not in err_file.read_text():  # it found the run busy and waits
        assert time.time() < deadline and waiter.poll() is None, err_file.read_text()
        time.sleep(0.2)
    assert f"pid {first.pid}" in err_file.read_text()
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=120) == 75
    assert waiter.wait(timeout=240) == 75, err_file.read_text()
    assert "resuming" in err_file.read_text()
    m = json.loads((run_dir / "manifest.json").read_text())
    assert [s["status"] for s in m["sessions"]] == ["incomplete", "incomplete"]  # one after the other

    # kill -9: the manifest still says running, the OS dropped the lock: shown as stopped
    killed = popen(project, "train", "-e", "1")
    _wait_training(project, killed)
    assert _ls_status(project) == "running"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "running"
    assert _ls_status(project) == "stopped"
    r = cli(project, "runs", "--local", "--json")
    assert r.returncode == 0 and [row["status"] for row in json.loads(r.stdout)] == ["stopped"], r.stderr


def test_restart_then_the_printed_command_resumes(project):
    toy_exp(project, epochs=2)
    assert cli(project, "train", "-e", "1").returncode == 0
    cmd = ("train", "-e", "1", "--restart", "--max-time", "0s")
    first = cli(project, *cmd)
    assert first.returncode == 75 and "resume with the same command" in first.stderr, first.stderr
    again = cli(project, *cmd)  # the same command: resumes the restarted run, does not restart it again
    assert again.returncode == 75, again.stderr
    assert "resuming" in again.stderr and "moved the previous run" not in again.stderr
    assert len([p for p in (project / "runs/0001_toy").iterdir() if ".replaced-" in p.name]) == 1
    sessions = json.loads((_run_dir(project) / "manifest.json").read_text())["sessions"]
    assert len(sessions) == 2


def test_corrupt_checkpoint_is_moved_aside_not_rotated_into_the_backup(project):
    toy_exp(project, epochs=2)
    for _ in range(2):  # two sessions: last.pt and last.prev.pt
        assert cli(project, "train", "-e", "1", "--max-time", "0s").returncode == 75
    ck = _run_dir(project) / "checkpoints"
    good_prev = (ck / "last.prev.pt").read_bytes()
    with open(ck / "last.pt", "r+b") as f:  # cut short, as a full disk would
        f.truncate(100)
    r = cli(project, "train", "-e", "1", "--max-time", "0s")
    assert r.returncode == 75, r.stderr
    assert "unreadable" in r.stderr and "moved it aside" in r.stderr
    aside = list(ck.glob("last.pt.corrupt-*"))
    assert len(aside) == 1 and aside[0].stat().st_size == 100
    # the next save found no last.pt to rotate: the backup slot still holds the good checkpoint
    assert (ck / "last.prev.pt").read_bytes() == good_prev
    assert (ck / "last.pt").stat().st_size > 100


def test_corrupt_manifest_is_reported_kept_and_repaired_only_on_request(project):
    toy_exp(project, epochs=1)
    assert cli(project, "train", "-e", "1", "--max-time", "0s").returncode in (0, 75)
    run_dir = _run_dir(project)
    man = run_dir / "manifest.json"
    man.write_text('{"experiment": 1, "status": "runn')  # cut short
    r = cli(project, "train", "-e", "1")
    assert r.returncode == 10 and str(man) in r.stderr and "--repair" in r.stderr, r.stderr
    assert man.read_text() == '{"experiment": 1, "status": "runn'  # nothing rebuilt silently
    assert _ls_status(project) == "corrupt manifest"
    r = cli(project, "train", "-e", "1", "--repair")
    assert r.returncode == 0, r.stderr
    kept = list(run_dir.glob("manifest.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == '{"experiment": 1, "status": "runn'
    m = json.loads(man.read_text())
    assert m["status"] == "complete" and m["repaired_from"] == kept[0].name


def test_an_experiment_file_that_exits_or_raises_is_that_files_error(project):
    toy_exp(project)
    (project / "experiments" / "0002_exits.py").write_text("import sys\nsys.exit(3)\n")
    (project / "experiments" / "0003_raises.py").write_text("raise RuntimeError('boom')\n")
    r = cli(project, "ls", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["id"]: row for row in json.loads(r.stdout)}
    assert rows[1]["task"] == "toy"
    assert "0002_exits.py" in rows[2]["error"] and "sys.exit(3)" in rows[2]["error"]
    assert "0003_raises.py" in rows[3]["error"] and "boom" in rows[3]["error"]
    r = cli(project, "show", "2")
    assert r.returncode == 2 and "0002_exits.py" in r.stderr and "sys.exit" in r.stderr


def test_killed_between_rotation_and_write_resumes_from_the_previous_checkpoint(tmp_path):
    """`save` moves last.pt to last.prev.pt, then writes the new last.pt: a SIGKILL in between leaves only
    last.prev.pt, which is the checkpoint to resume from (not "no usable checkpoint")."""
    from molremote.training.checkpoint import load_latest, save

    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    save(ckpt / "last.pt", {"model": {}, "step": 3})
    save(ckpt / "last.pt", {"model": {}, "step": 6})
    (ckpt / "last.pt").unlink()  # the state a kill after the rotation leaves
    assert load_latest(ckpt)["step"] == 3
    assert sorted(p.name for p in ckpt.iterdir()) == ["last.prev.pt"]  # nothing moved aside or lost
