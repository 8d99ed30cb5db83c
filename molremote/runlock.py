"""One writer per run folder: an OS lock (flock) on `<run>/.lock`, held by a trainer for its whole life.

The kernel releases the lock when the process dies, so `kill -9` leaves nothing to clean up: a stale
`.lock` file is harmless (only the lock on it counts). The file holds who took it (host, pid, since), read
back to say who holds a busy run. `pull` takes the same lock while it writes into a run folder. A hidden
file: never pushed to or pulled from a store. torch-free.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from .errors import RunBusyError

LOCK_NAME = ".lock"
# A reader (`ls`, `runs`) probes the lock for an instant; a trainer starting in that same instant retries
# for this long before it calls the run busy.
PROBE_GRACE_S = 1.0


def lock_path(run_dir: Path) -> Path:
    return Path(run_dir) / LOCK_NAME


def holder(run_dir: Path) -> dict[str, Any]:
    """What the lock file says about its holder ({} when unreadable)."""
    try:
        d = json.loads(lock_path(run_dir).read_text() or "{}")
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def describe_holder(run_dir: Path) -> str:
    h = holder(run_dir)
    if not h:
        return "another process"
    return (
        f"pid {h.get('pid', '?')} on {h.get('host', '?')} ({h.get('what', 'a process')}, since {h.get('since', '?')})"
    )


class RunLock:
    """`with RunLock(run_dir, "train"):` or `lock = RunLock(...).acquire(wait=...)` ... `lock.release()`.

    Raises RunBusyError (naming the holder) when another process holds the run and `wait` is False."""

    def __init__(self, run_dir: Path, what: str):
        self.run_dir, self.what = Path(run_dir), what
        self._f: Any = None
        # set by a caller that made the folder only to lock it: release() removes the folder again when
        # nothing else was written into it
        self.cleanup_if_unused = False

    def acquire(self, wait: bool = False, *, poll_s: float = 1.0, on_wait: Any = None) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        f = open(lock_path(self.run_dir), "a+")
        t_end, announced = time.monotonic() + PROBE_GRACE_S, False
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    f.close()
                    raise
            if wait:
                if not announced and on_wait is not None:
                    on_wait(describe_holder(self.run_dir))
                announced = True
                time.sleep(poll_s)
            elif time.monotonic() < t_end:
                time.sleep(0.05)
            else:
                who = describe_holder(self.run_dir)
                f.close()
                raise RunBusyError(
                    f"run folder {self.run_dir} is in use by {who}: one writer per run. Wait for "
                    "it to finish (or pass --wait), or stop that process first"
                )
        f.seek(0)
        f.truncate()
        f.write(
            json.dumps(
                {
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "what": self.what,
                    "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
            )
            + "\n"
        )
        f.flush()
        self._f = f
        return self

    def move_to(self, new_dir: Path) -> None:
        """Hold the lock of `new_dir` instead (the run folder was moved aside and a new one begins)."""
        new = RunLock(new_dir, self.what).acquire()
        self.cleanup_if_unused = False
        self.release()
        self.run_dir, self._f, self.cleanup_if_unused = new.run_dir, new._f, new.cleanup_if_unused

    def release(self) -> None:
        if self._f is None:
            return
        if self.cleanup_if_unused:
            try:  # unlink while still holding the lock, so no one else locks the file being removed
                if [p.name for p in self.run_dir.iterdir()] == [LOCK_NAME]:
                    lock_path(self.run_dir).unlink()
                    self.run_dir.rmdir()
                    parent = self.run_dir.parent
                    if not any(parent.iterdir()):
                        parent.rmdir()
            except OSError:
                pass
        try:
            fcntl.flock(self._f, fcntl.LOCK_UN)
        finally:
            self._f.close()
            self._f = None

    def __enter__(self) -> RunLock:
        return self if self._f is not None else self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def is_locked(run_dir: Path) -> bool:
    """Does a live process hold the run's lock? (A shared probe, released at once.)"""
    p = lock_path(run_dir)
    try:
        f = open(p)
    except OSError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False
