"""Kaggle's runtime side, simulated locally, for the loopback KaggleServer.

After every accepted push, `KaggleRuntime` does what Kaggle does with a script kernel: it lays out a fresh
`/kaggle` (MOLREMOTE_KAGGLE_ROOT = a temp folder) with the pushed dataset sources mounted at the 2026 paths
`input/datasets/<owner>/<slug>/` (or the older `input/<slug>/`, see `layout`; files taken from the server's
stored datasets), runs the pushed text with the system's Python, then publishes `working/` as the version's
output, the run's stdout/stderr as its log (Kaggle's JSON list of {stream_name, time, data}) and COMPLETE or
ERROR as its status. Status polls in between answer QUEUED, then RUNNING (after the previous version's final
status once, as the real trap).

`layout`: "2026" mounts datasets at `input/datasets/<owner>/<slug>/` (Kaggle since 2026), "legacy" at
`input/<slug>/` (before; still seen on older images): the kernel must find its data in both.

`session_env`: per-session extra environment (index 0 = first push), e.g. a tiny
MOLREMOTE_KAGGLE_SESSION_LIMIT_S for a session that must stop at its deadline. `fake`: a callable
(n, ref, body) -> (exit status file dict, log) used instead of running the script (fast chain tests).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers.kaggle_server import KaggleServer

LAYOUTS = {  # dataset owner, slug -> mount folder under input/
    "2026": lambda owner, slug: Path("datasets", owner, slug),
    "legacy": lambda owner, slug: Path(slug),
}


@dataclass
class Session:
    n: int
    ref: str
    body: dict
    root: Path
    returncode: int | None = None
    output: str = ""


class KaggleRuntime:
    def __init__(
        self,
        server: KaggleServer,
        workdir: Path,
        env: dict[str, str] | None = None,
        session_env: list[dict[str, str]] | None = None,
        timeout_s: float = 300,
        fake: Callable[[int, str, dict], tuple[dict, str]] | None = None,
        on_session_end: Callable[[Session], None] | None = None,
        layout: str = "2026",
    ):
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r}: expected one of {list(LAYOUTS)}")
        self.server, self.workdir, self.layout = server, Path(workdir), layout
        self.env = dict(env if env is not None else os.environ)
        self.session_env = session_env or []
        self.timeout_s, self.fake, self.on_session_end = timeout_s, fake, on_session_end
        self.sessions: list[Session] = []
        self.errors: list[BaseException] = []
        self._queue: queue.Queue[Session | None] = queue.Queue()
        self._orig = server._api_SaveKernel
        server._api_SaveKernel = self._save  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._work, name="kaggle-runtime", daemon=True)
        self._thread.start()

    # ---- the server side: called under the server's lock
    def _save(self, body: dict, user: str) -> dict:
        out = self._orig(body, user)
        if out.get("error") or not out.get("ref"):
            return out
        ref = out["ref"].removeprefix("/code/")
        k = self.server.kernels[ref]
        if k.statuses and k.statuses[-1][0] == "COMPLETE":
            k.statuses.pop()  # it finishes when the script does, not after a fixed number of polls
        s = Session(len(self.sessions), ref, body, self.workdir / f"session{len(self.sessions) + 1}")
        self.sessions.append(s)
        self._queue.put(s)
        return out

    # ---- the runtime side
    def _work(self) -> None:
        while True:
            s = self._queue.get()
            if s is None:
                return
            try:
                self._run(s)
            except BaseException as e:  # reported by close()
                self.errors.append(e)
                self.server.set_statuses(s.ref, ("ERROR", f"runtime: {e}"))

    def _mount(self, s: Session) -> None:
        for ref in s.body.get("datasetDataSources", []):
            ds = self.server.datasets.get(ref)
            if ds is None:
                continue  # Kaggle would refuse the source; the kernel reports what it misses
            base = s.root / "input" / LAYOUTS[self.layout](*ref.split("/"))
            for name, data in ds.files.items():
                p = base / name
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(data)

    def _run(self, s: Session) -> None:
        (s.root / "working").mkdir(parents=True)
        (s.root / "input").mkdir()
        if self.fake is not None:
            status, log = self.fake(s.n, s.ref, s.body)
            s.returncode, s.output = 0, log
            self._publish(s, {"molremote-status.json": json.dumps(status)}, log, "COMPLETE")
            return
        self._mount(s)
        src = s.root / "src" / "script.py"
        src.parent.mkdir()
        src.write_text(s.body["text"])
        env = {
            **self.env,
            "MOLREMOTE_KAGGLE_ROOT": str(s.root),
            "KAGGLE_KERNEL_RUN_TYPE": "Batch",
            **(self.session_env[s.n] if s.n < len(self.session_env) else {}),
        }
        cp = subprocess.run(
            [sys.executable, str(src)],
            cwd=s.root / "working",
            env=env,
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
        )
        s.returncode, s.output = cp.returncode, cp.stdout + cp.stderr
        files = {
            p.relative_to(s.root / "working").as_posix(): p.read_bytes()
            for p in sorted((s.root / "working").rglob("*"))
            if p.is_file()
        }
        log = json.dumps(
            [
                {"stream_name": "stdout", "time": 0.0, "data": cp.stdout},
                {"stream_name": "stderr", "time": 0.0, "data": cp.stderr},
            ]
        )
        self._publish(s, files, log, "COMPLETE" if cp.returncode == 0 else ("ERROR", f"exit {cp.returncode}"))

    def _publish(self, s: Session, files: dict[str, Any], log: str, status: Any) -> None:
        if self.on_session_end is not None:
            self.on_session_end(s)
        self.server.set_output(s.ref, files, log=log)
        self.server.set_statuses(s.ref, status)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=self.timeout_s)
        self.server._api_SaveKernel = self._orig  # type: ignore[method-assign]
        if self.errors:
            raise self.errors[0]
