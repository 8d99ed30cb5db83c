"""The MoA metric: mean column-wise binary log loss (natural log), predictions clipped to [1e-15, 1-1e-15]."""

from __future__ import annotations

import numpy as np

EPS = 1e-15


def mean_columnwise_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean over columns of each column's mean binary log loss; equals the mean of per-column
    `sklearn.metrics.log_loss(y[:, j], p[:, j], labels=[0, 1])` (tests/tasks/moa/test_metric.py)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    if y.shape != p.shape or y.ndim != 2:
        raise ValueError(f"labels {y.shape} and predictions {p.shape} must be the same (rows, columns) shape")
    ll = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    return float(ll.mean(axis=0).mean())


def prior_log_loss(y_train: np.ndarray, y_valid: np.ndarray) -> float:
    """The metric of the per-column prior: every validation row predicted as the column's training mean."""
    prior = np.asarray(y_train, dtype=np.float64).mean(axis=0, keepdims=True)
    return mean_columnwise_log_loss(y_valid, np.broadcast_to(prior, np.shape(y_valid)))
