"""Where things live: the project root (the folder holding `experiments/`) and the runs folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .errors import ExperimentError


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


def not_a_project(experiments: Path) -> ExperimentError:
    """The error for a command run where there is no experiments folder: says where it looked and what to do."""
    from .errors import ExperimentError

    if os.environ.get("MOLREMOTE_EXPERIMENTS"):
        return ExperimentError(
            f"MOLREMOTE_EXPERIMENTS={experiments}: no such folder (point it at the folder "
            f"holding the NNNN_<slug>.py experiment files, or unset it)"
        )
    if os.environ.get("MOLREMOTE_PROJECT"):
        return ExperimentError(
            f"MOLREMOTE_PROJECT={os.environ['MOLREMOTE_PROJECT']} is not a molremote project: "
            f"it has no experiments/ folder (point it at your project, or unset it)"
        )
    return ExperimentError(
        f"not inside a molremote project: no experiments/ folder in {Path.cwd()} or any folder "
        f"above it. cd into your project (the folder holding experiments/ and molremote.toml), "
        f"or set MOLREMOTE_PROJECT=/path/to/project; to start one, mkdir experiments and add "
        f"NNNN_<slug>.py files (README: Experiments)"
    )


def experiments_dir(root: Path | None = None) -> Path:
    return Path(os.environ.get("MOLREMOTE_EXPERIMENTS") or (root or project_root()) / "experiments")


def runs_dir(root: Path | None = None) -> Path:
    """Local run folders. `MOLREMOTE_RUNS` overrides `<project>/runs`."""
    return Path(os.environ.get("MOLREMOTE_RUNS") or (root or project_root()) / "runs")
