"""Fixtures for backend tests: the real loopback sshd + SLURM cluster, small git projects, Jobs."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from molremote.backends.base import Job
from molremote.bundle import BundleInfo, make_bundle

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = ROOT / "scripts" / "loopback-cluster.sh"

# A fixed experiment (not from experiments/) so golden files change only when the templates do.
EXPERIMENT = {
    "id": 620,
    "slug": "fatgcn",
    "parent": 610,
    "description": "golden",
    "tags": [],
    "task": {"name": "belka"},
    "model": {"name": "gcn"},
    "training": {"epochs": 3},
    "folds": {"n_folds": 5},
    "data": {},
    "config_hash": "0123456789ab",
    "backend": {
        "slurm": {
            "partition": None,
            "account": None,
            "time": "01:00:00",
            "gpus": 0,
            "cpus": 4,
            "mem": "16G",
            "signal_margin_s": 300,
            "max_restarts": 5,
        },
        "ssh": {"gpus": 0},
    },
}


@pytest.fixture(scope="session")
def cluster() -> dict[str, str]:
    """Install (if needed) and start the loopback sshd + SLURM. Never skips: a missing cluster is a failure."""
    if os.geteuid() != 0:
        pytest.fail(
            "backend integration tests need root to start sshd/slurm on loopback "
            "(run them as root, e.g. in CI or a container)"
        )
    for step in ("install", "start"):
        cp = subprocess.run(["bash", str(CLUSTER_SCRIPT), step], capture_output=True, text=True, timeout=600)
        if cp.returncode != 0:
            pytest.fail(f"scripts/loopback-cluster.sh {step} failed (exit {cp.returncode}):\n{cp.stderr[-3000:]}")
    env = {}
    for tok in cp.stdout.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            env[k] = v
    return env


@pytest.fixture(autouse=True)
def _jobs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MOLREMOTE_JOBS", str(tmp_path / "jobs"))


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=repo, check=True, capture_output=True
    )


@pytest.fixture
def small_project(tmp_path) -> Path:
    """A committed git project with no dependencies: bundles in milliseconds, venvs install nothing."""
    p = tmp_path / "proj"
    (p / "pkg").mkdir(parents=True)
    (p / "pkg" / "__init__.py").write_text("")
    (p / "pkg" / "hello.py").write_text("import sys\nprint('hello from the bundle, fold', sys.argv[1])\n")
    (p / "pyproject.toml").write_text(
        '[project]\nname = "p"\ndependencies = []\n[project.optional-dependencies]\ntrain = []\n'
    )
    git(p, "init", "-q")
    git(p, "add", ".")
    git(p, "commit", "-qm", "init")
    return p


def make_job(project: Path, out: Path, job_id: str, folds=(0,), experiment=None, **kw) -> Job:
    return Job(
        job_id=job_id, experiment=experiment or EXPERIMENT, folds=list(folds), bundle=make_bundle(project, out), **kw
    )


def fixed_bundle() -> BundleInfo:
    return BundleInfo(
        path=Path("/nonexistent/bundle-0123456789abcdef.tar.gz"),
        sha256="0123456789abcdef" * 4,
        commit="c0ffee" * 6 + "abcd",
        dirty=False,
        files=3,
        size=1000,
        content_hash="ab" * 32,
        dependencies={"": ["numpy>=1.26"], "train": ["torch>=2.6"]},
    )


def wait_state(backend, record, states=("complete", "incomplete", "failed", "cancelled"), timeout=120.0, poll=0.5):
    deadline = time.monotonic() + timeout
    while True:
        st = backend.status(record)
        if st.state in states:
            return st
        if time.monotonic() > deadline:
            raise AssertionError(f"job {record.job_id} still {st.state} after {timeout} s: {st.detail}\n{st.log_tail}")
        time.sleep(poll)


def check_golden(name: str, text: str) -> None:
    path = Path(__file__).parent / "golden" / name
    if os.environ.get("MOLREMOTE_UPDATE_GOLDEN") == "1":
        if os.environ.get("CI", "").lower() in ("true", "1"):  # an update there would make the check pass blindly
            pytest.fail(
                "MOLREMOTE_UPDATE_GOLDEN=1 is refused under CI=true: CI checks golden files, never "
                "rewrites them; update them locally and commit the diff"
            )
        path.write_text(text)
    assert path.exists(), f"golden file {path} missing (MOLREMOTE_UPDATE_GOLDEN=1 writes it)"
    assert text == path.read_text(), f"{name} differs from {path} (MOLREMOTE_UPDATE_GOLDEN=1 rewrites it)"
