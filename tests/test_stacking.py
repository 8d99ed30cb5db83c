"""molremote/stacking.py on the MoA demo task with hand-made parent runs: each training row's stacked feature is
its out-of-fold prediction (from the parent run that validated it), test rows get the mean over the parent's
folds and seeds, rows match by id whatever the files' order; folds that differ (config or assignment) are refused
naming both experiments; missing parent runs name the command that makes them, or are pulled from the store."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from molremote.errors import DataError, ExperimentError
from molremote.experiments import validate
from molremote.runs import key_for
from molremote.stacking import attach, stacked_inputs
from molremote.tasks import get_task

FOLDS = {"n_folds": 4, "scheme": "drug", "seed": 0}
PARENT, HASH = "0030_stage1", "feedc0ffee00"


def child(folds=None, seeds=None, parent_folds=None):
    entry = {
        "experiment": 30,
        "name": PARENT,
        "config_hash": HASH,
        "task": "moa",
        "seeds": seeds,
        "folds": parent_folds or FOLDS,
    }
    return validate(
        {
            "id": 31,
            "slug": "stage2",
            "task": {"name": "moa", "pca_genes": 3, "pca_cells": 2},
            "model": {"name": "tabular_mlp"},
            "folds": folds or FOLDS,
            "data": {"stack": [entry]},
        },
        file=None,
    )


def write_parent(root: Path, task, seeds=(None,), shuffle=True, skip=()):
    """Parent runs of every fold (and seed) with known predictions: valid value = f(id, seed), test = g(fold)."""
    rng = np.random.default_rng(0)
    ids, test_ids = task.row_ids("train"), task.row_ids("test")
    a = task.fold_assignment()
    truth: dict = {}
    for f in range(FOLDS["n_folds"]):
        for s in seeds:
            if (f, s) in skip:
                continue
            run = root / key_for(PARENT, f, HASH, s)
            (run / "predictions").mkdir(parents=True)
            rows = ids[a == f]
            if shuffle:
                rows = rng.permutation(rows)  # files in any row order: stacking matches by id
            v = rng.random((len(rows), 2))
            t = rng.random((len(test_ids), 2))
            truth[(f, s)] = (dict(zip(rows, v)), t)
            pq.write_table(
                pa.table(
                    {
                        "sig_id": rows,
                        "p_a": v[:, 0],
                        "p_b": v[:, 1],
                        "true__p_a": np.zeros(len(rows), np.int8),
                        "true__p_b": np.zeros(len(rows), np.int8),
                    }
                ),
                run / "predictions" / "valid.parquet",
            )
            pq.write_table(
                pa.table({"sig_id": test_ids, "p_a": t[:, 0], "p_b": t[:, 1]}), run / "predictions" / "test.parquet"
            )
            (run / "manifest.json").write_text(json.dumps({"status": "complete", "run_uid": uuid.uuid4().hex}))
    return truth


@pytest.fixture(scope="module")
def task():
    t = get_task(child())
    t.load()
    return t


def test_out_of_fold_features_and_fold_averaged_test(tmp_path, task):
    truth = write_parent(tmp_path, task)
    st = stacked_inputs(child(), 1, task, runs_root=tmp_path)
    ids, a = task.row_ids("train"), task.fold_assignment()
    assert st.columns == [f"{PARENT}:p_a", f"{PARENT}:p_b"]
    assert st.train.shape == (len(ids), 2) and st.test.shape == (task.n_test(), 2)
    for i in range(0, len(ids), 7):  # every row's feature is the prediction of the parent run that validated it
        np.testing.assert_allclose(st.train[i], truth[(a[i], None)][0][ids[i]], rtol=1e-6)
    mean_test = np.mean([truth[(f, None)][1] for f in range(4)], axis=0)
    np.testing.assert_allclose(st.test, mean_test, rtol=1e-6)
    assert [len(s["runs"]) for s in st.sources] == [4] and st.sources[0]["columns"] == 2


def test_parent_seeds_are_averaged_within_each_fold(tmp_path, task):
    truth = write_parent(tmp_path, task, seeds=(0, 1))
    st = stacked_inputs(child(seeds=[0, 1]), 0, task, runs_root=tmp_path)
    ids, a = task.row_ids("train"), task.fold_assignment()
    i = int(np.flatnonzero(a == 2)[0])
    want = (truth[(2, 0)][0][ids[i]] + truth[(2, 1)][0][ids[i]]) / 2
    np.testing.assert_allclose(st.train[i], want, rtol=1e-6)
    np.testing.assert_allclose(st.test, np.mean([t for _, t in truth.values()], axis=0), rtol=1e-6)


def test_folds_config_mismatch_is_refused_naming_both(tmp_path, task):
    write_parent(tmp_path, task)
    with pytest.raises(ExperimentError) as e:
        stacked_inputs(child(parent_folds={**FOLDS, "n_folds": 5}), 0, task, runs_root=tmp_path)
    msg = str(e.value)
    assert "0031_stage2 stacks on 0030_stage1, but their folds differ" in msg
    assert "n_folds=4" in msg and "n_folds=5" in msg and e.value.exit_code == 2


def test_fold_assignment_mismatch_is_refused(tmp_path, task):
    """Same folds section, other rows in a fold (e.g. a task parameter shaping folds changed): refused."""
    write_parent(tmp_path, task)
    v = tmp_path / key_for(PARENT, 2, HASH) / "predictions" / "valid.parquet"
    t = pq.read_table(v)
    pq.write_table(t.slice(1), v)  # the parent's fold 2 validated one row fewer
    with pytest.raises(ExperimentError, match=r"but fold 2 holds other rows in each: 0030_stage1 validated \d+ rows"):
        stacked_inputs(child(), 0, task, runs_root=tmp_path)


def test_missing_parent_runs_name_the_command(tmp_path, task):
    write_parent(tmp_path, task, skip={(3, None)})
    task.stacked = None  # the module's task object is shared: start without features
    with pytest.raises(DataError) as e:
        attach(child(), 0, task, runs_root=tmp_path)
    msg = str(e.value)
    assert f"{PARENT}/fold3-{HASH}: no run folder" in msg
    assert "`molremote train -e 30 --all-folds`" in msg and e.value.exit_code == 3
    assert task.stacked is None  # nothing attached


def test_missing_parent_runs_are_pulled_from_the_store(tmp_path, task):
    from molremote.store.local import LocalStore
    from molremote.store.ops import push_run

    made = tmp_path / "elsewhere"
    write_parent(made, task)
    store = LocalStore(tmp_path / "store")
    for f in range(4):
        push_run(made / key_for(PARENT, f, HASH), key=key_for(PARENT, f, HASH), store=store)
    here = tmp_path / "runs"
    st = stacked_inputs(child(), 0, task, store=store, runs_root=here)
    assert st.train.shape[1] == 2
    assert (here / key_for(PARENT, 3, HASH) / "predictions" / "valid.parquet").is_file()


def test_resolution_fills_parents_and_refuses_unknown_ids_and_cycles(project):
    from molremote.experiments import Registry
    from tests.conftest import write_experiment

    base = '{"name": "moa"}, model={"name": "tabular_mlp"}, folds={"n_folds": 3, "scheme": "kfold"}'
    write_experiment(project, "0040_a.py", f"EXPERIMENT = experiment(task={base}, training={{'seeds': [1, 2]}})\n")
    write_experiment(project, "0041_b.py", 'EXPERIMENT = derive(40, data={"stack": [{"experiment": 40}]})\n')
    write_experiment(project, "0042_c.py", 'EXPERIMENT = derive(40, data={"stack": [{"experiment": 99}]})\n')
    write_experiment(project, "0043_d.py", 'EXPERIMENT = derive(40, data={"stack": [{"experiment": 44}]})\n')
    write_experiment(project, "0044_e.py", 'EXPERIMENT = derive(40, data={"stack": [{"experiment": 43}]})\n')
    reg = Registry()
    a, b = reg.resolve(40), reg.resolve(41)
    (p,) = b.data.stack
    assert (p.name, p.config_hash, p.task, p.seeds) == ("0040_a", a.config_hash, "moa", [1, 2])
    assert p.folds == {"n_folds": 3, "scheme": "kfold", "seed": 0}
    assert "stack" not in a.to_json()["data"]  # no stack: the JSON (and hash) of older experiments unchanged
    with pytest.raises(ExperimentError, match="unknown stacked experiment id 99") as e:
        reg.resolve(42)
    assert e.value.field == "data.stack.0.experiment"
    with pytest.raises(ExperimentError, match="stacking cycle: 43 -> 44 -> 43"):
        reg.resolve(43)


def test_a_resume_that_would_see_other_parent_runs_is_refused(tmp_path, task):
    write_parent(tmp_path, task)
    first = attach(child(), 0, task, runs_root=tmp_path)
    manifest = {"stacked_on": first.sources}
    again = attach(child(), 0, task, runs_root=tmp_path, manifest=manifest, run_dir=tmp_path / "r")  # same runs
    assert again is not None and again.sources == first.sources
    m = json.loads((tmp_path / key_for(PARENT, 1, HASH) / "manifest.json").read_text())
    m["run_uid"] = "retrained"  # a parent fold trained again since the child run began
    (tmp_path / key_for(PARENT, 1, HASH) / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ExperimentError, match="the runs it stacks on changed since it started.*--restart"):
        attach(child(), 0, task, runs_root=tmp_path, manifest=manifest, run_dir=tmp_path / "r")
