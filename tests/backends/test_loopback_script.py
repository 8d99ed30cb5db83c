"""scripts/loopback-cluster.sh itself: a second start (another test session, another conftest) finds the cluster
up at once, because no daemon it started keeps holding the start lock."""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

from tests.backends.conftest import CLUSTER_SCRIPT


def test_daemons_do_not_inherit_the_start_lock(cluster):
    lock = Path(cluster["INFRA_DIR"]) / "start.lock"
    with open(lock, "w") as fh:
        # LOCK_NB: raises BlockingIOError if munged, mariadbd or any other daemon still holds the lock
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fh, fcntl.LOCK_UN)
    cp = subprocess.run(["bash", str(CLUSTER_SCRIPT), "start"], capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert "already up" in cp.stderr
