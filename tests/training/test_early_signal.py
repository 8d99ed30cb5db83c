"""A SIGUSR1 that arrives while `molremote train` is still starting (importing torch, reading data) is kept and
stops the trainer at its first check instead of killing the process (USR1's default action, exit 138)."""

from __future__ import annotations

import os
import signal

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
