"""MoA fold schemes: multilabel stratified, drug-aware (small drugs never split), plain K-fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from molremote.errors import ExperimentError
from molremote.tasks.moa import folds
from molremote.tasks.moa.task import MoaTask

from .conftest import moa_exp


@pytest.fixture(scope="module")
def demo():
    t = MoaTask(moa_exp())
    t.load()
    return t.y, t.drug


def test_every_scheme_assigns_each_row_one_fold_of_balanced_size(demo):
    y, drug = demo
    for scheme in folds.SCHEMES:
        f = folds.assign(scheme, y, drug, 5, 0, 18)
        assert f.shape == (len(y),) and set(f) == set(range(5)), scheme
        sizes = np.bincount(f)
        assert sizes.max() - sizes.min() <= 0.25 * len(y) / 5, (scheme, sizes)
        np.testing.assert_array_equal(f, folds.assign(scheme, y, drug, 5, 0, 18))  # deterministic
    assert not np.array_equal(folds.assign("kfold", y, drug, 5, 0, 18), folds.assign("kfold", y, drug, 5, 1, 18))


def test_multilabel_stratification_spreads_each_target_over_the_folds(demo):
    y, _ = demo
    f = folds.multilabel_stratified(y, 5, 0)
    per_fold = np.stack([y[f == k].sum(axis=0) for k in range(5)])  # (fold, target) positives
    expected = y.sum(axis=0) / 5
    assert np.all(np.abs(per_fold - expected) <= np.maximum(1.5, 0.2 * expected))
    random = folds.kfold(len(y), 5, 0)
    per_random = np.stack([y[random == k].sum(axis=0) for k in range(5)])
    assert np.abs(per_fold - expected).sum() < np.abs(per_random - expected).sum()


def test_drug_aware_folds_never_split_a_small_drug_and_spread_large_ones(demo):
    y, drug = demo
    f = folds.drug_aware(y, drug, 5, 0, threshold=18)
    by_drug = pd.DataFrame({"drug": drug, "fold": f}).groupby("drug")["fold"].agg(["nunique", "size"])
    small = by_drug[by_drug["size"] <= 18]
    assert len(small) > 50 and (small["nunique"] == 1).all()
    large = by_drug[by_drug["size"] > 18]
    assert len(large) >= 1 and (large["nunique"] > 1).all()  # the 24-row drug is split by row
    # with threshold 0 every drug counts as large: plain row-level MSKF
    np.testing.assert_array_equal(folds.drug_aware(y, drug, 5, 0, threshold=0), folds.multilabel_stratified(y, 5, 0))


def test_unknown_scheme_and_too_few_folds_are_refused(demo):
    y, drug = demo
    with pytest.raises(ExperimentError, match=r"unknown fold scheme 'random' for moa \(mskf \| drug \| kfold\)"):
        folds.assign("random", y, drug, 5, 0, 18)
    with pytest.raises(ExperimentError, match="n_folds >= 2"):
        folds.assign("mskf", y, drug, 1, 0, 18)
