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
