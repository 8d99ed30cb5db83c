"""`molremote train --fold K` and `--all-folds` through `python -m molremote`, on the shipped BELKA demo data with a
tiny cnn1d (tests/cli/test_exit_codes.py TINY: 2 folds, 2 steps per epoch)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.cli.test_exit_codes import molremote, no_traceback, tiny_project


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


@pytest.mark.slow  # two training processes (torch imports, 3 folds of validation): 20-60 s on a busy 2-core box
def test_fold_then_all_folds(tmp_path):
    p = tiny_project(tmp_path / "p")
    r = molremote(p, "train", "-e", "3", "--fold", "1", "--set", "training.max_steps_per_epoch=1", "--no-progress")
    assert r.returncode == 0, r.stderr
    fold1 = Path(r.stdout.strip().splitlines()[-1])
    assert fold1.parent == p / "runs" / "0003_belka_tiny" and fold1.name.startswith("fold1-")
    m1 = manifest(fold1)
    assert (m1["fold"], m1["status"], m1["steps"], m1["overrides"]) == (
        1,
        "complete",
        1,
        ["training.max_steps_per_epoch=1"],
    )
    assert "0003_belka_tiny fold 1" in r.stderr and "fold 0" not in r.stderr
    assert [d.name for d in fold1.parent.iterdir()] == [fold1.name]  # fold 1 only

    r = molremote(p, "train", "-e", "3", "--all-folds", "--set", "training.max_steps_per_epoch=1", "--no-progress")
    assert r.returncode == 0, r.stderr
    no_traceback(r)
    assert Path(r.stdout.strip().splitlines()[-1]) == fold1  # the last fold's run folder, as the last line
    assert f"run {fold1} is already complete" in r.stderr  # fold 1 not trained again
    runs = sorted(fold1.parent.iterdir())
    assert [d.name.split("-")[0] for d in runs] == ["fold0", "fold1"]
    assert {d.name.split("-")[1] for d in runs} == {fold1.name.split("-")[1]}  # one config hash
    m0 = manifest(runs[0])
    assert (m0["fold"], m0["status"], m0["steps"]) == (0, "complete", 1)
    assert manifest(fold1)["sessions"] == m1["sessions"]  # untouched
    # the folds' validation rows are disjoint and together cover the demo training set once
    v0, v1 = (pd.read_parquet(d / "predictions" / "valid.parquet") for d in runs)
    k0, k1 = (set(zip(v["id"], v["protein_name"])) for v in (v0, v1))
    assert len(k0) == len(v0) and len(k1) == len(v1) and not k0 & k1
    assert len(k0 | k1) == 30_000  # 10,000 demo molecules x 3 proteins
