import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder (experiments/, runs/) as the current project."""
    (tmp_path / "experiments").mkdir()
    monkeypatch.setenv("MOLREMOTE_PROJECT", str(tmp_path))
    monkeypatch.delenv("MOLREMOTE_RUNS", raising=False)
    monkeypatch.delenv("MOLREMOTE_EXPERIMENTS", raising=False)
    monkeypatch.delenv("MOLREMOTE_STORE", raising=False)
    return tmp_path


def write_experiment(project: Path, name: str, body: str) -> Path:
    p = project / "experiments" / name
    p.write_text("from molremote.experiments import experiment, derive\n" + body)
    return p
