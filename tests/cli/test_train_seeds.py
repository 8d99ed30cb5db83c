"""Several seeds through the real CLI on the shipped MoA demo: `train` makes one run per (fold, seed) with its
own key, manifest seed and weights; `evaluate` averages the seeds within the fold (the averaged out-of-fold
predictions equal the mean of the two runs') before scoring; `ls` and `runs` show the seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molremote.tasks.moa.metric import mean_columnwise_log_loss
from molremote.tasks.moa.results import read_valid
from tests.conftest import write_experiment
from tests.tasks.moa.test_cli import cli

SEEDS_EXP = """
EXPERIMENT = experiment(
    task={"name": "moa", "pca_genes": 5, "pca_cells": 2},
    model={"name": "tabular_mlp", "hidden": 32},
    training={"epochs": 2, "batch_size": 64, "device": "cpu", "threads": 1, "seeds": [3, 11]},
    folds={"n_folds": 4, "scheme": "drug", "run": [1]},
)
"""


@pytest.mark.slow  # one training process (torch import) + evaluate: 15-40 s on a busy 2-core machine
@pytest.mark.integration
def test_two_seeds_train_as_two_runs_and_evaluate_averages_them(project):
    write_experiment(project, "0005_moa_seeds.py", SEEDS_EXP)
    r = cli(project, "train", "-e", "5", "--fold", "1", "--no-progress")  # every seed of fold 1
    assert r.returncode == 0, r.stderr
    assert "fold 1  seed 3" in r.stderr and "fold 1  seed 11" in r.stderr
    runs = sorted((project / "runs" / "0005_moa_seeds").iterdir())
    assert [d.name.split("-")[:2] for d in runs] == [["fold1", "s11"], ["fold1", "s3"]]
    assert len({d.name.split("-")[2] for d in runs}) == 1  # one config hash for both seeds
    manifests = [json.loads((d / "manifest.json").read_text()) for d in runs]
    assert [(m["seed"], m["status"]) for m in manifests] == [(11, "complete"), (3, "complete")]
    (_, cols, y, p11), (_, _, _, p3) = (read_valid(d / "predictions" / "valid.parquet") for d in runs)
    assert np.abs(p11 - p3).max() > 1e-3  # different seeds, different models

    r = cli(project, "evaluate", "-e", "5", "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert sorted((x["fold"], x["seed"]) for x in ev["runs"]) == [(1, 3), (1, 11)]
    averaged = Path(ev["record"]).parent / "seeds" / "fold1" / "valid.parquet"
    ids, cols2, y2, mean = read_valid(averaged)
    assert cols2 == cols and np.array_equal(y2, y)
    np.testing.assert_allclose(mean, (p3 + p11) / 2, rtol=0, atol=1e-12)  # the seeds' mean, row by row
    assert ev["fold_scores"]["1"] == pytest.approx(mean_columnwise_log_loss(y, (p3 + p11) / 2), abs=1e-12)
    assert ev["seed_scores"]["1"] == {
        "3": pytest.approx(mean_columnwise_log_loss(y, p3), abs=1e-12),
        "11": pytest.approx(mean_columnwise_log_loss(y, p11), abs=1e-12),
    }
    # the submission averages the fold's seeds too: test rows are the two runs' mean
    sub = pd.read_csv(ev["submission"]).set_index("sig_id")
    t3, t11 = (pd.read_parquet(d / "predictions" / "test.parquet").set_index("sig_id") for d in runs[::-1])
    np.testing.assert_allclose(sub[cols].to_numpy(), ((t3 + t11) / 2).loc[sub.index, cols].to_numpy(), atol=1e-9)

    ls = cli(project, "ls", "--json")
    assert json.loads(ls.stdout)[0]["seeds"] == [3, 11]
    listed = cli(project, "runs", "--local")
    assert "fold1-s3-" in listed.stdout and "fold1-s11-" in listed.stdout
    r = cli(project, "train", "-e", "5", "--seed", "4", "--no-progress")
    assert r.returncode == 2 and "seed 4 is not one of experiment 5's training.seeds [3, 11]" in r.stderr
