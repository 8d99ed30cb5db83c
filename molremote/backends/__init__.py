"""Where a run executes. Every backend implements the protocol in `base.py`; look one up by name.

Imported lazily by name so `molremote status` loads only the backends it needs (and never torch).
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import BackendError

# name -> "module:Class": the one list of backends (`molremote.launching` builds their options).
BACKENDS = {
    "ssh": "molremote.backends.ssh:SshBackend",
    "slurm": "molremote.backends.slurm:SlurmBackend",
    "kaggle": "molremote.backends.kaggle:KaggleBackend",
}


def get_backend(name: str, **options: Any):
    if name not in BACKENDS:
        raise BackendError(f"unknown backend '{name}' (known: {', '.join(sorted(BACKENDS))})")
    mod, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(mod), cls)(**options)


def backend_for(record) -> Any:
    """The backend object that launched `record`, rebuilt from the options saved in it."""
    return get_backend(record.backend, **record.options)


def refresh(record, root=None):
    """Ask the backend for the job's state, save it in the record; returns (record, JobStatus)."""
    from .. import jobs

    st = backend_for(record).status(record)
    if (st.state, st.detail) != (record.state, record.detail):
        record = jobs.update(record, root, state=st.state, detail=st.detail)
    return record, st


def fetch_runs(record, runs_root) -> list[str]:
    """Bring a job's run folders into `runs_root` (the local runs folder) without ever mixing two runs.

    The backend copies into a staging folder beside `runs_root` first. Each fetched run folder then goes to its
    key under the run's lock (never into a run that is training here): when the local folder holds the same run
    (same `run_uid`) it is brought up to date file by file; when it holds another run, that one is first moved
    aside to `<key>.replaced-<time>` (nothing lost, like `train --restart`). Returns one line per run."""
    import json
    import os
    import shutil
    import tempfile
    import time
    from pathlib import Path

    from ..runlock import RunLock
    from ..runs import MANIFEST, key_of_dir

    runs_root = Path(runs_root)
    runs_root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".fetch-", dir=runs_root))
    notes: list[str] = []
    try:
        backend_for(record).fetch(record, stage)
        for man in sorted(stage.glob(f"*/*/{MANIFEST}")):
            src = man.parent
            dst = runs_root / src.relative_to(stage)
            key = key_of_dir(dst)
            theirs = _run_uid(man, json)
            with RunLock(dst, "fetch"):
                mine = _run_uid(dst / MANIFEST, json)
                moved = ""
                if mine is not None and mine != theirs:
                    aside = dst.with_name(f"{dst.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
                    aside.mkdir()
                    for p in list(dst.iterdir()):
                        if p.name != ".lock":
                            os.replace(p, aside / p.name)
                    moved = f" (the local run {mine} was another run: moved to {aside})"
                for f in sorted(p for p in src.rglob("*") if p.is_file()):
                    target = dst / f.relative_to(src)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(f, target)  # same filesystem: atomic per file
                notes.append(f"{key}: run {theirs}{moved}")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return notes


def _run_uid(manifest, json) -> str | None:
    try:
        return json.loads(manifest.read_text()).get("run_uid") or "unknown"
    except FileNotFoundError:
        return None
    except (ValueError, OSError):
        return "unreadable"
