"""molremote.results.ensemble: `ensemble -i FILE` alone infers the task from the file's header."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from molremote.errors import SubmissionError
from molremote.results.ensemble import infer_task
from molremote.tasks import TASKS, TaskEntry
from molremote.tasks.belka.results import BelkaResults


class LookalikeResults(BelkaResults):
    """A second task with BELKA's `id,binds` format (registered by one test only)."""

    name = "lookalike"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_header_names_the_one_task_it_fits(tmp_path):
    belka = write(tmp_path / "a.csv", "id,binds\n1,0.5\n2,0.25\n")
    t2m = write(tmp_path / "b.csv", "ID,0,1,2\n0,0.1,0.2,0.3\n")
    assert infer_task([belka]) == "belka"
    assert infer_task([belka, belka]) == "belka"
    assert infer_task([t2m]) == "text2mol"
    with pytest.raises(SubmissionError) as e:  # files of two tasks: none fits all
        infer_task([belka, t2m])
    assert "no task's submission format fits" in str(e.value) and "belka: id, binds" in str(e.value)
    with pytest.raises(SubmissionError, match=r"molecule, score.*--task"):  # a header no task's format fits
        infer_task([write(tmp_path / "c.csv", "molecule,score\na,0.1\n")])


def test_several_matching_tasks_are_named(tmp_path, monkeypatch):
    monkeypatch.setitem(
        TASKS,
        "lookalike",
        TaskEntry(TASKS["belka"].params, TASKS["belka"].impl, "tests.results.test_ensemble:LookalikeResults"),
    )
    f = write(tmp_path / "a.csv", "id,binds\n1,0.5\n")
    with pytest.raises(SubmissionError, match=r"several tasks \(belka, lookalike\): name one with --task"):
        infer_task([f])


def test_cli_ensemble_of_files_alone(tmp_path):
    a = write(tmp_path / "a.csv", "id,binds\n1,0.5\n2,0.25\n")
    b = write(tmp_path / "b.csv", "id,binds\n2,0.75\n1,0.5\n")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "molremote",
            "ensemble",
            "-i",
            str(a),
            "-i",
            str(b),
            "-o",
            str(tmp_path / "out"),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["task"] == "belka" and out["method"] == "mean"
    assert (tmp_path / "out" / "submission.csv").read_text() == "id,binds\n1,0.5\n2,0.5\n"
