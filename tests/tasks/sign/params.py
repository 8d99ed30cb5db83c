"""The task's parameters: what an experiment may set under `task={...}` (torch-free, validated on load)."""

from __future__ import annotations

from molremote.tasks.base import TaskParams


class SignParams(TaskParams):
    n: int = 400  # training points: a few hundred keep a CPU epoch well under a second
    n_test: int = 100
    dim: int = 8
    noise: float = 0.3  # label noise on the score (not linearly separable: folds and models score differently)
