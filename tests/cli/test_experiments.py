"""`molremote ls / show` through the CLI entry point: 80 columns, and a clear word outside a project."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def molremote(tmp_path: Path, *args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT), "MOLREMOTE_CONFIG": ""}
    return subprocess.run(
        [sys.executable, "-m", "molremote", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def fake_run(runs: Path, name: str, status: str, value: float, metric: str) -> None:
    """A run folder as the trainer leaves it (only what `ls` reads: the manifest)."""
    d = runs / name / "fold0-0123abcd"
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(
        json.dumps(
            {
                "experiment": int(name[:4]),
                "status": status,
                "updated_at": "2026-11-30T00:00:00+00:00",
                "best": {"metric": metric, "value": value, "epoch": 3},
            }
        )
    )


@pytest.mark.parametrize("columns", ["80", "100"])
def test_ls_fits_the_terminal_and_never_crops_the_score(tmp_path, columns):
    runs = tmp_path / "runs"
    fake_run(runs, "0110_belka_transformer", "incomplete", 0.61234, "belka_ap")
    fake_run(runs, "0620_text2mol_fat", "complete", 0.456789, "lrap")
    r = molremote(tmp_path, "ls", COLUMNS=columns, MOLREMOTE_RUNS=str(runs))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= int(columns), "\n".join(lines)
    row = next(line for line in lines if line.startswith("0110"))
    assert "incomplete" in row and "0.6123 belka_ap" in row and "transformer" in row
    row = next(line for line in lines if line.startswith("0620"))
    assert "complete" in row and "0.4568 lrap" in row
    ids = [line.split()[0] for line in lines if line[:4].isdigit()]
    assert ids == sorted(ids) and "0001" in ids and "0620" in ids  # every experiment, one line each
    if columns == "80":
        assert "…" in next(line for line in lines if line.startswith("0100"))  # the description gives way


def test_ls_drops_the_description_on_a_narrow_terminal(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "0110_belka_transformer", "incomplete", 0.61234, "belka_ap")
    r = molremote(tmp_path, "ls", COLUMNS="64", MOLREMOTE_RUNS=str(runs))
    assert r.returncode == 0, r.stderr
    assert "description" not in r.stdout and "0.6123 belka_ap" in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 64


@pytest.mark.parametrize("command", [["ls"], ["show", "1"], ["train", "-e", "1"], ["evaluate", "-e", "1"]])
def test_outside_a_project_says_so_and_what_to_do(tmp_path, command):
    outside = tmp_path / "somewhere"
    outside.mkdir()
    r = molremote(tmp_path, *command, cwd=outside)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert f"not inside a molremote project: no experiments/ folder in {outside}" in r.stderr
    assert "MOLREMOTE_PROJECT" in r.stderr and "cd into your project" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_molremote_project_without_experiments_is_named(tmp_path):
    r = molremote(tmp_path, "ls", MOLREMOTE_PROJECT=str(tmp_path))
    assert r.returncode == 2 and f"MOLREMOTE_PROJECT={tmp_path} is not a molremote project" in r.stderr


def test_config_outside_a_project_says_so(tmp_path):
    outside = tmp_path / "somewhere"
    outside.mkdir()
    r = molremote(tmp_path, "config", cwd=outside, COLUMNS="200")
    assert r.returncode == 0, r.stderr
    assert f"(none: no experiments/ in {outside} or above; cd into a project or set MOLREMOTE_PROJECT)" in r.stdout
    r = molremote(tmp_path, "config", cwd=ROOT, COLUMNS="200")
    assert "│ project " in r.stdout and str(ROOT) in r.stdout


def test_ls_shows_an_invalid_experiment_error_whole(tmp_path):
    proj = tmp_path / "proj"
    (proj / "experiments").mkdir(parents=True)
    (proj / "experiments" / "0003_bad.py").write_text("EXPERIMENT = 5\n")
    r = molremote(tmp_path, "ls", cwd=proj, COLUMNS="80")
    assert r.returncode == 0, r.stderr
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    flat = " ".join(r.stdout.split())
    assert "0003 invalid" in flat and "field 'EXPERIMENT': must define EXPERIMENT = experiment(...)" in flat
