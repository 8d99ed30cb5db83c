"""Per-fold preprocessing: fitted on the fold's training rows (or train+test), saved in the run folder,
reused (not refitted) by a later session with identical features, refused when the data changed under it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from molremote.errors import DataError, ExperimentError
from molremote.tasks.moa.preprocess import PKL, Preprocessor
from molremote.tasks.moa.task import MoaTask

from .conftest import moa_exp

FULL = {"pca_genes": 8, "pca_cells": 3, "fa_genes": 4, "fa_cells": 2, "variance_threshold": 0.05}


def fold_task(root=None, **params):
    t = MoaTask(moa_exp(root, **params))
    t.load()
    train_idx, valid_idx = t.split(0)
    return t, train_idx, valid_idx


def test_fit_is_saved_and_a_second_session_loads_it_with_identical_features(tmp_path):
    t, tr, _ = fold_task(**FULL)
    t.prepare_fold(0, tr, tmp_path)
    assert t.preprocess_source == "fitted"
    meta = json.loads((tmp_path / "preprocess/preprocess.json").read_text())
    # 2 categorical + 150 genes + 8 PCA + 4 FA + 20 cells + 3 PCA + 2 FA, less what the threshold dropped
    info = t.model_info()
    assert (info["n_features"], info["n_outputs"], info["n_aux_outputs"]) == (meta["n_features"], 14, 11)
    assert 2 + 150 + 20 < meta["n_features"] <= 2 + 150 + 8 + 4 + 20 + 3 + 2
    assert meta["fit_rows"] == len(tr)
    files = [tmp_path / "preprocess" / n for n in (PKL, "features.npz", "preprocess.json")]
    before = [(f.stat().st_mtime_ns, f.read_bytes()) for f in files]
    x_train, x_test = t.x_train.copy(), t.x_test.copy()

    t2, tr2, _ = fold_task(**FULL)  # a new process resuming the run
    t2.prepare_fold(0, tr2, tmp_path)
    assert t2.preprocess_source == "loaded"
    assert [(f.stat().st_mtime_ns, f.read_bytes()) for f in files] == before  # reused, not rewritten
    np.testing.assert_array_equal(t2.x_train, x_train)
    np.testing.assert_array_equal(t2.x_test, x_test)


def test_quantile_output_is_normal_and_validation_rows_stay_out_of_the_fit(tmp_path):
    t, tr, _ = fold_task()
    t.prepare_fold(0, tr, tmp_path / "a")
    c = t.x_train[tr, 152:172]  # transformed c- columns of the fitting rows (continuous, no ties: normal)
    assert np.all(np.abs(np.median(c, axis=0)) < 0.05) and np.all(np.abs(c.std(axis=0) - 1) < 0.2)
    # fitting on the fold's training rows alone: moving a validation row changes nothing
    direct = Preprocessor.fit(t.params, t.train.take(tr))
    np.testing.assert_allclose(direct.transform(t.train), t.x_train, rtol=0, atol=0)
    t_all, tr_all, _ = fold_task(fit_on="train+test")
    t_all.prepare_fold(0, tr_all, tmp_path / "b")
    assert not np.allclose(t_all.x_train, t.x_train)  # the test rows moved the quantiles


def test_changed_data_under_a_saved_preprocessing_is_refused(tmp_path, moa_copy):
    t, tr, _ = fold_task(moa_copy, pca_genes=4)
    t.prepare_fold(0, tr, tmp_path)
    df = pd.read_csv(moa_copy / "train_features.csv")
    df.loc[df["cp_type"] == "trt_cp", "g-0"] += 3.0
    df.to_csv(moa_copy / "train_features.csv", index=False)
    t2, tr2, _ = fold_task(moa_copy, pca_genes=4)
    with pytest.raises(DataError, match=r"features.npz: the input data \(train/test features\) differ"):
        t2.prepare_fold(0, tr2, tmp_path)


def test_damaged_saved_features_are_refused(tmp_path):
    t, tr, _ = fold_task(pca_genes=4)
    t.prepare_fold(0, tr, tmp_path)
    np.savez(tmp_path / "preprocess" / "features.npz", train=t.x_train + 1, test=t.x_test)
    t2, tr2, _ = fold_task(pca_genes=4)
    with pytest.raises(DataError, match=r"features.npz: content does not match the sha256"):
        t2.prepare_fold(0, tr2, tmp_path)


def test_a_threshold_that_removes_everything_is_refused(tmp_path):
    t, tr, _ = fold_task(variance_threshold=1e9)
    with pytest.raises(
        ExperimentError, match=r"field 'task.variance_threshold': variance_threshold 1000000000.0 removes every feature"
    ):
        t.prepare_fold(0, tr, tmp_path)
    with pytest.raises(RuntimeError, match="prepare_fold"):
        t.model_info()


@pytest.mark.slow  # umap-learn's numba compilation: 20-60 s on a busy 2-core machine
def test_umap_components_are_appended_and_reused_on_resume(tmp_path):
    pytest.importorskip("umap")
    t, tr, _ = fold_task(umap_genes=3, umap_cells=2, quantile=True)
    t.prepare_fold(0, tr, tmp_path)
    plain, tr_p, _ = fold_task()
    plain.prepare_fold(0, tr_p, tmp_path / "plain")
    assert t.x_train.shape[1] == plain.x_train.shape[1] + 5 and np.isfinite(t.x_train).all()
    t2, tr2, _ = fold_task(umap_genes=3, umap_cells=2, quantile=True)
    t2.prepare_fold(0, tr2, tmp_path)
    assert t2.preprocess_source == "loaded"
    np.testing.assert_array_equal(t2.x_test, t.x_test)
