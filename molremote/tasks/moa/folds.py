"""MoA fold schemes over the (treated) training rows: each returns a fold id per row.

- "mskf": multilabel stratified K-fold (`iterstrat`), stratified on the scored targets;
- "drug": the 1st-place drug-aware scheme: drugs with at most `threshold` rows are stratified as whole drugs
  (one row per drug: its mean targets), so a small drug never sits on both sides of a split; the rows of
  larger (control-like, frequent) drugs are stratified row by row;
- "kfold": plain shuffled K-fold.
"""

from __future__ import annotations

import numpy as np

from ...errors import ExperimentError

SCHEMES = ("mskf", "drug", "kfold")


def _mskf(y: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    out = np.full(len(y), -1, dtype=np.int64)
    for k, (_, va) in enumerate(
        MultilabelStratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros((len(y), 1)), y)
    ):
        out[va] = k
    return out


def multilabel_stratified(y: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    return _mskf(np.asarray(y), n_folds, seed)


def kfold(n: int, n_folds: int, seed: int) -> np.ndarray:
    from sklearn.model_selection import KFold

    out = np.full(n, -1, dtype=np.int64)
    for k, (_, va) in enumerate(KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(n))):
        out[va] = k
    return out


def drug_aware(y: np.ndarray, drug: np.ndarray, n_folds: int, seed: int, threshold: int = 18) -> np.ndarray:
    """The winners' scheme (their `create_folds` with drug ids): small drugs whole, large drugs by row."""
    y = np.asarray(y)
    drug = np.asarray(drug)
    names, inverse, counts = np.unique(drug, return_inverse=True, return_counts=True)
    small = counts[inverse] <= threshold
    out = np.full(len(y), -1, dtype=np.int64)
    small_drugs = np.flatnonzero(counts <= threshold)
    if len(small_drugs):
        if len(small_drugs) < n_folds:
            raise ExperimentError(
                f"drug folds: {len(small_drugs)} drugs with <= {threshold} rows cannot fill {n_folds} folds",
                field="folds.n_folds",
            )
        # one row per small drug: its targets averaged, rounded back to 0/1 (a drug has one mechanism set)
        sums = np.zeros((len(names), y.shape[1]))
        np.add.at(sums, inverse, y)
        ydrug = (sums[small_drugs] / counts[small_drugs, None] > 0.5).astype(np.int64)
        fold_of_drug = np.full(len(names), -1, dtype=np.int64)
        fold_of_drug[small_drugs] = _mskf(ydrug, n_folds, seed)
        out[small] = fold_of_drug[inverse[small]]
    if (~small).any():
        rows = np.flatnonzero(~small)
        if len(rows) < n_folds:
            raise ExperimentError(
                f"drug folds: {len(rows)} rows of drugs with > {threshold} rows cannot fill {n_folds} folds",
                field="folds.n_folds",
            )
        out[rows] = _mskf(y[rows], n_folds, seed)
    return out


def assign(scheme: str, y: np.ndarray, drug: np.ndarray, n_folds: int, seed: int, threshold: int) -> np.ndarray:
    if n_folds < 2:
        raise ExperimentError(f"moa folds need n_folds >= 2 (got {n_folds})", field="folds.n_folds")
    if scheme == "mskf":
        return multilabel_stratified(y, n_folds, seed)
    if scheme == "drug":
        return drug_aware(y, drug, n_folds, seed, threshold)
    if scheme == "kfold":
        return kfold(len(y), n_folds, seed)
    raise ExperimentError(f"unknown fold scheme {scheme!r} for moa ({' | '.join(SCHEMES)})", field="folds.scheme")
