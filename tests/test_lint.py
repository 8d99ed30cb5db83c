"""The tree stays clean: `ruff check`, `ruff format --check` (pyproject's [tool.ruff]) over the code folders, and
`mypy` (pyproject's [tool.mypy]: molremote/) -- issue 10 item 8. They run here, inside the test suite, so the
README's test command (scripts/test.sh, which .ci/run calls) runs them and pytest's summary stays its last line.
A cold mypy run takes a minute or more on 2 cores: that test is marked slow."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

FOLDERS = ["molremote", "tests", "benchmarks", "scripts"]


def _tool(name: str) -> str:
    """The venv's own binary (next to this Python), else one on PATH."""
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]' (it is in the test extra)")
    return found


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True)


def test_ruff_check_is_clean():
    r = _run(_tool("ruff"), "check", "--output-format", "concise", *FOLDERS)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_format_is_clean():
    r = _run(_tool("ruff"), "format", "--check", *FOLDERS)
    assert r.returncode == 0, "run `ruff format " + " ".join(FOLDERS) + "`:\n" + r.stdout + r.stderr


@pytest.mark.slow
def test_mypy_is_clean():
    r = _run(_tool("mypy"))  # files, exclusions and strictness from pyproject's [tool.mypy]
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_finds_planted_problems(tmp_path):
    """The checks above can fail: the project's config flags an unused import and a too-long line, and the
    format check flags unformatted code."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n" + "x = '" + "a" * 130 + "'\n" + "y = {'a':1}\n")
    config = str(ROOT / "pyproject.toml")
    r = _run(_tool("ruff"), "check", "--config", config, "--output-format", "concise", str(bad), cwd=tmp_path)
    assert r.returncode == 1 and "F401" in r.stdout and "E501" in r.stdout, r.stdout + r.stderr
    r = _run(_tool("ruff"), "format", "--config", config, "--check", str(bad), cwd=tmp_path)
    assert r.returncode == 1 and "bad.py" in r.stdout + r.stderr, r.stdout + r.stderr
