"""docs/adding-a-task.md, executed: the "sign" task (this folder, nothing else) registered by one line goes
through `train`, `evaluate` and `ensemble` with the real CLI entry point, and molremote/ never names it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import molremote
from molremote.results.submission_files import check_submission
from tests.conftest import write_experiment
from tests.tasks.sign.results import SUBMISSION, accuracy

ROOT = Path(__file__).resolve().parents[3]
EXPERIMENTS = {
    "0001_sign_mlp.py": """EXPERIMENT = experiment(task={"name": "sign", "n": 400}, model="toy_mlp",
    training={"epochs": 4, "lr": 0.02, "batch_size": 32}, folds={"n_folds": 2})
""",
    # a second member for the ensemble: the same task and folds, a wider model
    "0002_sign_wide.py": """EXPERIMENT = derive(1, model={"name": "toy_mlp", "hidden": 64})
""",
}


def sign(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "MOLREMOTE_PROJECT": str(project),
        "OMP_NUM_THREADS": "1",
        "MOLREMOTE_TRACKING": "disabled",
        "WANDB_MODE": "disabled",
    }
    return subprocess.run(
        [sys.executable, "-m", "tests.tasks.sign", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def ok_json(project: Path, *args: str) -> dict:
    r = sign(project, *args, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


@pytest.mark.slow  # subprocesses: 2 experiments x 2 folds trained on CPU, 30-100 s on a busy 2-core machine
@pytest.mark.integration
def test_a_new_task_is_one_folder_and_one_registry_line(project):
    for name, body in EXPERIMENTS.items():
        write_experiment(project, name, body)
    for e in ("1", "2"):
        r = sign(project, "train", "-e", e, "--all-folds", "--no-progress")
        assert r.returncode == 0, r.stdout + r.stderr

    ev = ok_json(project, "evaluate", "-e", "1")
    assert ev["task"] == "sign" and ev["metric"] == "accuracy" and sorted(ev["fold_scores"]) == ["0", "1"]
    # the scores are the task's metric on the files the task wrote: recompute them here
    valid = pd.concat(
        [pd.read_parquet(project / "runs" / r["run_key"] / "predictions" / "valid.parquet") for r in ev["runs"]]
    )
    assert ev["oof_score"] == pytest.approx(accuracy(valid["label"].to_numpy(), valid["p_positive"].to_numpy()))
    assert sorted(valid["row"]) == list(range(400))  # every training point validated once across the folds
    assert 0.6 < ev["oof_score"] <= 1.0  # learnt something (a coin scores 0.5)
    sub = check_submission(ev["submission"], SUBMISSION, expected_ids=np.arange(400, 500))
    tests = [
        pd.read_parquet(project / "runs" / r["run_key"] / "predictions" / "test.parquet").sort_values("row")
        for r in ev["runs"]
    ]
    np.testing.assert_allclose(sub.values[:, 0], np.mean([t["p_positive"] for t in tests], axis=0), atol=1e-12)

    ens = ok_json(project, "ensemble", "-e", "1", "-e", "2", "--weights", "auto")
    assert ens["task"] == "sign" and ens["method"] == "mean" and ens["oof_note"] is None
    assert [m["name"] for m in ens["members"]] == ["e0001", "e0002", "ensemble"]
    assert ens["oof_score"] >= ens["weights_fit"]["uniform_score"] - 1e-12  # fitted: never worse than uniform
    assert abs(sum(ens["weights"]) - 1) < 1e-9
    check_submission(ens["submission"], SUBMISSION, expected_ids=np.arange(400, 500))

    # files alone: the task comes from their header (`row,p_positive` fits no other task's format)
    files = ok_json(project, "ensemble", "-i", ev["submission"], "-i", ens["submission"], "-o", str(project / "files"))
    assert files["task"] == "sign" and files["oof_note"]

    r = sign(project, "evaluate", "-e", "1", "--submit")
    assert r.returncode == 7 and "task 'sign' has no Kaggle competition" in r.stderr


def test_molremote_never_names_the_example_task():
    import ast

    pkg = Path(molremote.__file__).parent
    named = [
        p
        for p in pkg.rglob("*.py")
        if "tests.tasks.sign" in p.read_text()
        or (
            "templates" in p.parts  # rendered text, not Python: look for the quoted name
            and ("'sign'" in p.read_text() or '"sign"' in p.read_text())
        )
        or (
            "templates" not in p.parts
            and any(isinstance(n, ast.Constant) and n.value == "sign" for n in ast.walk(ast.parse(p.read_text())))
        )
    ]
    assert named == []
