from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from molremote.experiments import validate
from molremote.tasks.base import DEMO_ROOT

DEMO = DEMO_ROOT / "moa"


def moa_exp(root: Path | None = None, folds: dict[str, Any] | None = None, **task: Any):
    return validate(
        {
            "id": 1,
            "slug": "t",
            "task": {"name": "moa", **task},
            "model": {"name": "tabular_mlp"},
            "data": {"root": str(root) if root else None},
            "folds": folds or {"n_folds": 5, "scheme": "drug"},
        },
        file=None,
    )


@pytest.fixture
def moa_copy(tmp_path) -> Path:
    """A writable copy of the shipped demo data."""
    return Path(shutil.copytree(DEMO, tmp_path / "moa"))
