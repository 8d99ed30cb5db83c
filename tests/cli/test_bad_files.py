"""Any file content given to a command that reads CSV / TOML / parquet gets one line naming the file and what is
wrong, with the documented exit code: never a traceback (real files, the real entry point)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BINARY = bytes(range(256)) * 8  # not UTF-8, NUL bytes, no newline where a header would end


def molremote(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MOLREMOTE_PROJECT": str(project), "MOLREMOTE_RUNS": str(project / "runs")}
    env.pop("MOLREMOTE_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "molremote", *args], env=env, cwd=project, capture_output=True, text=True, timeout=300
    )


def one_line_error(r: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert all(n in lines[0] for n in needles), (needles, lines[0])


@pytest.fixture
def project(tmp_path) -> Path:
    p = tmp_path / "p"
    (p / "experiments").mkdir(parents=True)
    shutil.copy(ROOT / "experiments" / "0001_belka_demo_cnn1d.py", p / "experiments")
    return p


@pytest.mark.parametrize(
    "content, why",
    [
        (BINARY, "not a CSV text file (NUL byte"),
        (b"id,binds\n\xd0\xff,1\n" + b"\xff" * 10, "cannot be read as CSV"),
        (b"\xd0\xffid,binds\n", "not a UTF-8 text CSV file"),
        (b"", "empty file"),
        (b"id,binds\n1,abc\n", "cannot be read as CSV"),
        (b'{"a": [1, 2', "no task's submission format fits"),
        (b"\x00\x00\x00\n", "NUL byte"),
    ],
)
def test_ensemble_input_of_any_content(project, content, why):
    f = project / "member.csv"
    f.write_bytes(content)
    r = molremote(project, "ensemble", "-i", str(f), "-o", str(project / "out.csv"))
    one_line_error(r, 7, str(f.name), why)
    assert not (project / "out.csv").exists()


@pytest.mark.parametrize("content, why", [(BINARY, "not UTF-8 text"), (b"[store\nurl = ", "not valid TOML")])
def test_settings_file_of_any_content(project, content, why):
    (project / "molremote.toml").write_bytes(content)
    r = molremote(project, "config")
    one_line_error(r, 8, "molremote.toml", why)
