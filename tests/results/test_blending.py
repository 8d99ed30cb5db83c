"""molremote.results.blending: a blend's out-of-fold rows are the weighted mean of its members' (nested blends
multiply down), its submission the same mean of the members' submissions by id, auto weights are fitted on OOF.
Member runs are synthetic run folders of real MoA experiments on the demo data (the task's own torch-free
write_predictions), so no training: seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molremote.errors import DataError, SubmissionError
from molremote.experiments import Registry
from molremote.results.blending import blend_dir, evaluate_blend
from molremote.results.submission_files import check_submission
from molremote.tasks import get_task
from molremote.tasks.moa.metric import mean_columnwise_log_loss
from molremote.tasks.moa.results import submission_spec
from tests.conftest import write_experiment

MEMBER = (
    'experiment(task={"name": "moa"}, model={"name": "tabular_mlp", "hidden": 16}, '
    + 'folds={"n_folds": 2, "scheme": "kfold"})\n'
)


_LOADED: dict = {}


def write_runs(project: Path, reg: Registry, i: int, seed: int, folds=(0, 1)) -> None:
    """Complete run folders of experiment i with random predictions written by the MoA task itself."""
    exp = reg.resolve(i)
    d = exp.to_dict()
    key = json.dumps([d["task"], d["folds"], d["data"]], sort_keys=True)
    if key not in _LOADED:  # members differing only in training settings share the data and folds
        _LOADED[key] = get_task(exp)
        _LOADED[key].load()
    task = _LOADED[key]
    rng = np.random.default_rng(seed)
    n_targets = task.y.shape[1]
    for f in folds:
        run = project / "runs" / exp.name / f"fold{f}-{exp.config_hash}"
        (run / "predictions").mkdir(parents=True)
        man = {"experiment": exp.id, "name": exp.name, "fold": f, "config_hash": exp.config_hash}
        man |= {"run_uid": f"u{i}-{f}", "status": "complete", "code": {"commit": "c0ffee1", "dirty": False}}
        (run / "manifest.json").write_text(json.dumps(man))
        (run / "config.json").write_text(json.dumps(exp.to_json()))
        _, valid_idx = task.split(f)
        task.write_predictions(run / "predictions", "valid", valid_idx, {"p": rng.random((len(valid_idx), n_targets))})
        test_idx = np.arange(task.n_test())
        task.write_predictions(run / "predictions", "test", test_idx, {"p": rng.random((len(test_idx), n_targets))})


@pytest.fixture
def moa_project(project):
    write_experiment(project, "0010_a.py", f"EXPERIMENT = {MEMBER}")
    write_experiment(project, "0011_b.py", 'EXPERIMENT = derive(10, training={"seed": 1})\n')
    write_experiment(project, "0012_c.py", 'EXPERIMENT = derive(10, training={"seed": 2})\n')
    blend = "from molremote.experiments import blend\nEXPERIMENT = blend(members=[{}])\n"
    for name, members in (
        ("0020_inner.py", '{"experiment": 10, "weight": 1}, {"experiment": 11, "weight": 3}'),
        ("0021_outer.py", '{"experiment": 20, "weight": 0.5}, {"experiment": 12, "weight": 0.5}'),
        ("0022_auto.py", ", ".join(f'{{"experiment": {i}, "weight": "auto"}}' for i in (10, 11, 12))),
    ):
        (project / "experiments" / name).write_text(blend.replace("{}", members, 1))
    reg = Registry()
    for i, seed in ((10, 0), (11, 1), (12, 2)):
        write_runs(project, reg, i, seed)
    return project, reg


def oof_of(project: Path, name: str) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in sorted((project / "runs" / name).glob("fold*/predictions/valid.parquet"))]
    return pd.concat(frames).set_index("sig_id").sort_index()


def test_nested_fixed_blend_is_the_weighted_mean_of_its_leaves(moa_project):
    project, reg = moa_project
    rec, reused = evaluate_blend(reg, 21)
    assert not reused and rec["kind"] == "blend" and rec["task"] == "moa" and rec["metric"] == "logloss"
    # leaf weights: 0.5 x (1/4, 3/4) for 10 and 11, 0.5 for 12
    leaves = {d["experiment"]: d["weight"] for d in rec["leaf_weights"]}
    assert leaves == pytest.approx({10: 0.125, 11: 0.375, 12: 0.5}, abs=1e-12)
    assert sum(len(d["run_keys"]) for d in rec["leaf_weights"]) == 6 == len(rec["runs"])
    a, b, c = (oof_of(project, n) for n in ("0010_a", "0011_b", "0012_c"))
    cols = [col for col in a.columns if not col.startswith("true__")]
    blended = 0.125 * a[cols].to_numpy() + 0.375 * b[cols].to_numpy() + 0.5 * c[cols].to_numpy()
    y = a[[f"true__{col}" for col in cols]].to_numpy()
    assert rec["oof_score"] == pytest.approx(mean_columnwise_log_loss(y, blended), abs=1e-12)
    # per fold: the same blend on each fold's rows
    for f in (0, 1):
        fold = pd.read_parquet(next((project / "runs" / "0010_a").glob(f"fold{f}-*/predictions/valid.parquet")))
        mask = a.index.isin(fold["sig_id"])
        assert rec["n_valid"][str(f)] == mask.sum()
        assert rec["fold_scores"][str(f)] == pytest.approx(mean_columnwise_log_loss(y[mask], blended[mask]), abs=1e-12)
    # the submission: the same weights over the members' evaluated submissions, aligned by sig_id
    sample = pd.read_csv(Path(get_task(reg.resolve(10)).data_dir()) / "sample_submission.csv")
    sub = check_submission(rec["submission"], submission_spec(list(sample.columns[1:])), sample["sig_id"].to_numpy())
    subs = {
        i: pd.read_csv(next((project / "runs" / n).glob("evaluation-*/submission.csv"))).set_index("sig_id")
        for i, n in ((10, "0010_a"), (11, "0011_b"), (12, "0012_c"))
    }
    want = sum(leaves[i] * subs[i].loc[sub.ids].to_numpy() for i in subs)
    np.testing.assert_allclose(sub.values, want, atol=1e-12)
    assert Path(rec["record"]) == blend_dir(reg.blend(21)) / "evaluation.json"
    tree = rec["members"]
    assert [m["name"] for m in tree] == ["b0020", "e0012"] and [m["name"] for m in tree[0]["members"]] == [
        "e0010",
        "e0011",
    ]
    again, reused = evaluate_blend(reg, 21)
    assert reused and again["submission_sha256"] == rec["submission_sha256"]


def test_auto_weights_are_fitted_on_oof_non_negative_and_sum_to_one(moa_project):
    project, reg = moa_project
    rec, _ = evaluate_blend(reg, 22)
    w = [m["weight"] for m in rec["members"]]
    assert all(x >= 0 for x in w) and sum(w) == pytest.approx(1.0, abs=1e-9)
    fit = rec["weights_fit"]
    # log loss: lower is better, and the fit never returns worse than the uniform blend
    assert fit["score"] <= fit["uniform_score"] + 1e-12
    assert rec["oof_score"] == pytest.approx(fit["score"], abs=1e-12)
    assert rec["oof_score"] <= min(m["oof_score"] for m in rec["members"]) + 1e-12


def test_members_must_predict_the_same_rows(moa_project):
    project, reg = moa_project
    write_experiment(project, "0013_d.py", 'EXPERIMENT = derive(10, folds={"n_folds": 3, "run": [0]})\n')
    (project / "experiments" / "0023_bad.py").write_text(
        "from molremote.experiments import blend\n"
        'EXPERIMENT = blend(members=[{"experiment": 10, "weight": 1}, {"experiment": 13, "weight": 1}])\n'
    )
    reg = Registry()
    write_runs(project, reg, 13, 5, folds=(0,))  # one fold of three: its OOF covers a third of the rows
    with pytest.raises(DataError, match=r"e0013's out-of-fold rows differ from e0010's"):
        evaluate_blend(reg, 23)


def test_a_member_without_runs_names_the_command_that_makes_them(moa_project):
    project, reg = moa_project
    write_experiment(project, "0014_e.py", 'EXPERIMENT = derive(10, training={"seed": 9})\n')
    (project / "experiments" / "0024_untrained.py").write_text(
        "from molremote.experiments import blend\n"
        'EXPERIMENT = blend(members=[{"experiment": 10, "weight": 1}, {"experiment": 14, "weight": 1}])\n'
    )
    with pytest.raises(DataError, match=r"0014_e .* no complete run .*`molremote train -e 14 --all-folds`"):
        evaluate_blend(Registry(), 24, pull=False)


def test_a_changed_member_run_needs_overwrite(moa_project):
    from molremote.results.evaluate import evaluate_experiment

    project, reg = moa_project
    first, _ = evaluate_blend(reg, 21)
    run = next((project / "runs" / "0012_c").glob("fold0-*"))
    man = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**man, "run_uid": "retrained"}))
    evaluate_experiment(reg.resolve(12), overwrite=True)  # the member's own evaluation, redone
    with pytest.raises(SubmissionError, match="holds an evaluation of other member runs .* --overwrite"):
        evaluate_blend(reg, 21)
    again, reused = evaluate_blend(reg, 21, overwrite=True)
    assert not reused and "u12-0" not in {r["run_uid"] for r in again["runs"]}
