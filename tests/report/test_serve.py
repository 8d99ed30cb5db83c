"""`molremote report --serve`: the page on localhost, rebuilt while runs change, stopped by Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from molremote.experiments import Registry
from molremote.report.serve import ReportServer
from tests.report.synth import make_project, write_run

ROOT = Path(__file__).resolve().parents[2]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.headers["Cache-Control"] == "no-store"
        return r.read().decode()


def test_server_rebuilds_while_runs_change(project, monkeypatch):
    monkeypatch.chdir(project)
    make_project(project, 3, folds=2, epochs=3, records=False)
    srv = ReportServer(project / "live.html", port=0, every=1.0, build_kwargs={"include_store": False})
    try:
        page = get(srv.url)
        assert "live, rebuilt every 1 s" in page and "var refresh = 1.0;" in page
        assert 'id="exp-3"' in page and 'id="exp-4"' not in page
        with pytest.raises(urllib.error.HTTPError) as e:
            get(srv.url + "etc/passwd")
        assert e.value.code == 404
        # a new experiment starts running: the next rebuild shows it
        (project / "experiments" / "0004_late.py").write_text(
            "from molremote.experiments import derive\nEXPERIMENT = derive(1, description='late starter')\n"
        )
        write_run(project / "runs", Registry().resolve(4), 0, epochs=3, quality=0.5, status="running", epochs_done=1)
        before = srv.builds
        deadline = time.monotonic() + 60
        while srv.builds < before + 2 and time.monotonic() < deadline:  # one full rebuild after the change
            time.sleep(0.2)
        page = get(srv.url)
        assert 'id="exp-4"' in page and "late starter" in page
    finally:
        srv.stop()


def tgkill(pid: int, tid: int, sig: int) -> None:
    """Send `sig` to one thread of `pid` (Linux tgkill: os.kill picks any thread of the process)."""
    import ctypes
    import platform

    nr = {"x86_64": 234, "aarch64": 131}[platform.machine()]
    assert ctypes.CDLL(None, use_errno=True).syscall(nr, pid, tid, sig) == 0, os.strerror(ctypes.get_errno())


@pytest.mark.integration
@pytest.mark.parametrize("to", ["process", "server thread"])
def test_cli_serve_until_ctrl_c(project, to):
    """Ctrl-C stops the server, exit 0, also when the kernel hands the SIGINT to one of its threads (the
    main thread must still wake up to raise KeyboardInterrupt)."""
    make_project(project, 2, folds=1, epochs=2, records=False)
    env = {**os.environ, "MOLREMOTE_PROJECT": str(project), "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "molremote",
            "report",
            "--serve",
            "--port",
            "0",
            "--no-store",
            "-o",
            str(project / "r.html"),
        ],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a suite started in the background by a shell (`cmd &`) runs with SIGINT ignored,
        # which its children would inherit, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        line = p.stdout.readline()
        m = re.search(r"serving (http://127\.0\.0\.1:\d+/)", line)
        assert m, line + p.stderr.read() if p.poll() is not None else line
        assert "0001_base" in get(m[1])
        if to == "process":
            p.send_signal(signal.SIGINT)
        else:
            threads = [int(t) for t in os.listdir(f"/proc/{p.pid}/task") if int(t) != p.pid]
            assert threads, "the server runs threads"
            tgkill(p.pid, threads[0], signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err[-2000:]
    finally:
        if p.poll() is None:
            p.kill()
