"""A SIGUSR1 that arrives while `molremote train` is still starting (importing torch, reading data) is kept and
stops the trainer at its first check instead of killing the process (USR1's default action, exit 138)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from molremote.training import early
from molremote.training.trainer import StopFlag


def test_usr1_before_the_trainer_listens_becomes_its_stop_reason():
    old = signal.getsignal(signal.SIGUSR1)
    try:
        early.catch()
        os.kill(os.getpid(), signal.SIGUSR1)  # would end this process without catch()
        assert early.PENDING == ["SIGUSR1"]
        flag = StopFlag(None).install()
        try:
            assert bool(flag) and flag.reason == "SIGUSR1" and early.PENDING == []
        finally:
            flag.uninstall()
        again = StopFlag(None).install()
        try:
            assert not again  # consumed: a later run in this process starts clean
        finally:
            again.uninstall()
    finally:
        early.PENDING.clear()
        signal.signal(signal.SIGUSR1, old)


def test_usr1_sent_before_the_process_existed_is_found_as_the_stop_file(tmp_path, monkeypatch):
    """Multi-node jobs: the job script touches MOLREMOTE_STOP_FILE before it relays USR1, so a worker that
    torchrun starts after the signal still stops at its first check."""
    old = signal.getsignal(signal.SIGUSR1)
    stop_file = tmp_path / "fold0.stop"
    monkeypatch.setenv(early.STOP_FILE_ENV, str(stop_file))
    try:
        early.catch()
        assert early.PENDING == []  # no file: nothing pending
        stop_file.touch()
        early.catch()
        assert early.PENDING == ["SIGUSR1"]
        flag = StopFlag(None).install()
        try:
            assert flag.reason == "SIGUSR1"
        finally:
            flag.uninstall()
    finally:
        early.PENDING.clear()
        signal.signal(signal.SIGUSR1, old)


# Run as `python -c`: `molremote train` of the toy (or, with "--no-train", only the handler `train` installs
# first), then, while Python shuts down, a USR1 from a helper shell: a module-level object's __del__ (run after
# CPython has restored the default signal actions) asks for it and waits until it was sent.
SHUTDOWN_USR1 = r"""
import os, subprocess, sys, time
ready, sent = sys.argv[1], sys.argv[2]
subprocess.Popen(["sh", "-c", f'while [ ! -e {ready} ]; do sleep 0.02; done; kill -USR1 {os.getpid()}; touch {sent}'])

class AtShutdown:
    def __init__(self):
        self.exists, self.sleep, self.open = os.path.exists, time.sleep, open
    def __del__(self):
        self.open(ready, "w").close()
        for _ in range(500):
            if self.exists(sent):
                break
            self.sleep(0.02)

KEEP = AtShutdown()
args = sys.argv[3:]
if args == ["--no-train"]:
    from molremote.training.early import catch
    catch()
    sys.exit(0)
from tests.training import toy
toy.register()
from molremote.cli import main
sys.argv = ["molremote", *args]
main()
"""


def test_usr1_while_a_finished_run_exits_does_not_fail_it(tmp_path):
    """SLURM's warning can come as a complete run's process exits: the exit stays 0 (the job must not fail or
    requeue a finished run). Without `ignore_late()` the same late USR1 ends the process with 138."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.training.test_trainer import toy_exp

    (tmp_path / "experiments").mkdir()
    toy_exp(tmp_path, epochs=1)
    env = {**os.environ, "MOLREMOTE_PROJECT": str(tmp_path), "PYTHONPATH": str(ROOT)}

    def run(*args: str) -> subprocess.CompletedProcess:
        ready, sent = tmp_path / f"ready{len(args)}", tmp_path / f"sent{len(args)}"
        cmd = [sys.executable, "-c", SHUTDOWN_USR1, str(ready), str(sent), *args]
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert sent.exists(), p.stderr  # the USR1 was sent during shutdown
        return p

    control = run("--no-train")  # a process with the trainer's handler only: default action at shutdown
    assert control.returncode == -signal.SIGUSR1, (control.returncode, control.stderr)
    done = run("train", "-e", "1", "--fold", "0", "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "epoch 1/1" in done.stderr and Path(done.stdout.strip().splitlines()[-1]).is_dir()
