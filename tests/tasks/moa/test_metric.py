"""The MoA metric against scikit-learn's per-column log loss."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss

from molremote.tasks.moa.metric import mean_columnwise_log_loss, prior_log_loss


@pytest.mark.parametrize("seed", range(5))
def test_equals_the_mean_of_sklearn_per_column_log_loss(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((300, 17)) < rng.random(17) * 0.3).astype(float)
    y[:, 0] = 0  # a column without positives: labels=[0, 1] keeps it defined
    p = rng.random((300, 17)) ** 3
    p[rng.random(p.shape) < 0.02] = 0.0  # exact 0/1 predictions are clipped, not infinite
    p[rng.random(p.shape) < 0.02] = 1.0
    ref = np.mean([log_loss(y[:, j], np.clip(p[:, j], 1e-15, 1 - 1e-15), labels=[0, 1]) for j in range(17)])
    assert abs(mean_columnwise_log_loss(y, p) - ref) < 1e-9


def test_clipping_bounds_a_confident_mistake():
    assert mean_columnwise_log_loss(np.array([[1.0]]), np.array([[0.0]])) == pytest.approx(-np.log(1e-15))


def test_prior_predicts_the_training_mean():
    y_tr = np.array([[1, 0], [0, 0], [1, 0], [0, 1]], float)
    y_va = np.array([[1, 0], [0, 1]], float)
    p = np.array([[0.5, 0.25], [0.5, 0.25]])
    assert prior_log_loss(y_tr, y_va) == pytest.approx(mean_columnwise_log_loss(y_va, p))
    with pytest.raises(ValueError, match="same"):
        mean_columnwise_log_loss(y_va, p[:1])
