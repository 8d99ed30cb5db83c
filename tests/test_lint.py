"""The folders made clean keep passing `ruff check` (pyproject's [tool.ruff]); the list grows as folders are
cleaned (issue 10 item 8), until it is all of molremote/ and tests/. mypy is run by .ci/run (a cold run takes
minutes on 2 cores, too slow for a unit test)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

CLEAN = [
    "molremote/tasks",
    "molremote/models",
    "molremote/results",
    "molremote/report",
    *(
        f"molremote/{m}.py"
        for m in (
            "experiments",
            "registry",
            "secrets",
            "settings",
            "bundle",
            "doctor",
            "tracking",
            "jobs",
            "project",
            "fsutil",
            "errors",
            "timefmt",
        )
    ),
    "tests/tasks",
    "tests/models",
    "tests/results",
    "tests/report",
    *(
        f"tests/test_{m}.py"
        for m in (
            "experiments",
            "secrets",
            "settings",
            "bundle",
            "doctor",
            "tracking",
            "tracking_online",
            "jobs",
            "fsutil",
            "lint",
        )
    ),
]


def _ruff() -> str:
    exe = Path(sys.executable).with_name("ruff")
    found = str(exe) if exe.exists() else shutil.which("ruff")
    if found is None:
        pytest.fail("ruff is not installed: pip install -e '.[test]' (it is in the test extra)")
    return found


def test_clean_folders_pass_ruff_check():
    r = subprocess.run(
        [_ruff(), "check", "--output-format", "concise", *CLEAN], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_finds_a_planted_problem(tmp_path):
    """The check above can fail: the project's config flags an unused import and a too-long line."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n" + "x = '" + "a" * 130 + "'\n")
    r = subprocess.run(
        [_ruff(), "check", "--config", str(ROOT / "pyproject.toml"), "--output-format", "concise", str(bad)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "F401" in r.stdout and "E501" in r.stdout, r.stdout + r.stderr
