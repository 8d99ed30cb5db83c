"""The shipped demo blend (0039 = 0.5 x exp 3 + 0.5 x exp 38) and its auto-weighted twin (0293) through the real
CLI: both members trained (one fold, two epochs), the blend's out-of-fold predictions equal the weighted mean of
the members' (asserted on the files), its score is reported, its submission passes the format check."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from molremote.results.submission_files import check_submission
from molremote.tasks.moa.metric import mean_columnwise_log_loss
from molremote.tasks.moa.results import read_valid, submission_spec

from .conftest import DEMO
from .test_cli import cli, cmd, env, with_experiments

SHORT = ["--set", "training.epochs=2", "--set", "training.threads=1"]  # applied to every member of a blend


@pytest.mark.slow  # two CLI trainings (torch imports): ~30 s on a busy 2-core machine
@pytest.mark.integration
def test_demo_blend_is_the_weighted_mean_of_its_trained_members(project):
    with_experiments(
        project,
        "0003_moa_demo_mlp.py",
        "0038_moa_demo_mlp_seed2.py",
        "0039_moa_demo_blend.py",
        "0293_moa_demo_blend_auto.py",
    )
    # a blend has nothing to train: exit 2 naming its members, before torch is imported
    r = subprocess.run(
        cmd(project, "train", "-e", "39"), cwd=project, env=env(project), capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and "experiment 39 is a blend of experiments 3, 38" in r.stderr
    for e in ("3", "38"):
        r = cli(project, "train", "-e", e, *SHORT, "--no-progress")
        assert r.returncode == 0, r.stdout + r.stderr
    r = cli(project, "evaluate", "-e", "39", *SHORT, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    ev = json.loads(r.stdout)
    runs = {d["experiment"]: project / "runs" / d["run_keys"][0] for d in ev["leaf_weights"]}
    (ids3, cols, y, p3), (ids38, _, _, p38) = (read_valid(runs[i] / "predictions" / "valid.parquet") for i in (3, 38))
    assert np.array_equal(ids3, ids38)  # same fold, same rows
    blended = 0.5 * p3 + 0.5 * p38
    assert ev["oof_score"] == pytest.approx(mean_columnwise_log_loss(y, blended), abs=1e-12)
    assert ev["fold_scores"] == {"0": pytest.approx(ev["oof_score"], abs=1e-12)} and ev["n_valid"] == {"0": len(y)}
    members = {m["experiment"]: m for m in ev["members"]}
    assert members[3]["oof_score"] == pytest.approx(mean_columnwise_log_loss(y, p3), abs=1e-12)
    assert 0 < ev["oof_score"] < 0.693  # two epochs from ln 2 (a logit of 0)
    sample = pd.read_csv(DEMO / "sample_submission.csv")
    sub = check_submission(ev["submission"], submission_spec(list(sample.columns[1:])), sample["sig_id"].to_numpy())
    subs = [
        pd.read_csv(json.loads(open(m["evaluation"]).read())["submission"]).set_index("sig_id")
        for m in (members[3], members[38])
    ]
    np.testing.assert_allclose(sub.values, 0.5 * subs[0].loc[sub.ids] + 0.5 * subs[1].loc[sub.ids], atol=1e-12)
    # the auto twin: weights fitted on the same OOF rows, >= 0, summing to 1, never worse than uniform
    r = cli(project, "evaluate", "-e", "293", *SHORT, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    auto = json.loads(r.stdout)
    w = [m["weight"] for m in auto["members"]]
    assert min(w) >= 0 and sum(w) == pytest.approx(1.0, abs=1e-9)
    assert auto["oof_score"] <= auto["weights_fit"]["uniform_score"] + 1e-12
    assert auto["oof_score"] == pytest.approx(mean_columnwise_log_loss(y, w[0] * p3 + w[1] * p38), abs=1e-12)
