"""Where things live: the project root (the folder holding `experiments/`) and the runs folder."""
from __future__ import annotations

import os
from pathlib import Path


def project_root(start: Path | None = None) -> Path:
    """`MOLREMOTE_PROJECT`, else the nearest folder upward from cwd that holds `experiments/`."""
    env = os.environ.get("MOLREMOTE_PROJECT")
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "experiments").is_dir():
            return d
    return here


def experiments_dir(root: Path | None = None) -> Path:
    return Path(os.environ.get("MOLREMOTE_EXPERIMENTS") or (root or project_root()) / "experiments")


def runs_dir(root: Path | None = None) -> Path:
    """Local run folders. `MOLREMOTE_RUNS` overrides `<project>/runs`."""
    return Path(os.environ.get("MOLREMOTE_RUNS") or (root or project_root()) / "runs")
