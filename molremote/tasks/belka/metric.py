"""The BELKA organisers' metric, torch-free (evaluate and ensemble use it without the training stack).

Not micro average precision over all rows: the organisers' scorer computes sklearn
`average_precision_score` separately for each (protein_name x split_group) cell and returns the mean over
the cells that have rows. `split_group` separates molecules whose building blocks were all seen in training
("share") from those with at least one unseen building block ("nonshare"). Predictions that are not finite
or lie outside [0, 1] are refused, as the organisers' scorer refuses them.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike

from ...errors import SubmissionError

PROTEINS = ("BRD4", "HSA", "sEH")
SHARE, NONSHARE = "share", "nonshare"


def check_probabilities(pred: np.ndarray, what: str = "predictions") -> None:
    """SubmissionError unless every value is a finite number in [0, 1] (names the first offenders)."""
    p = np.asarray(pred, dtype=np.float64)
    bad = ~np.isfinite(p)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[:5]
        raise SubmissionError(
            f"{what}: {int(bad.sum())} non-finite value(s), e.g. at rows {i.tolist()}: {p.ravel()[i].tolist()}"
        )
    out = (p < 0) | (p > 1)
    if out.any():
        i = np.flatnonzero(out.ravel())[:5]
        raise SubmissionError(
            f"{what}: {int(out.sum())} value(s) outside [0, 1], e.g. at rows {i.tolist()}: {p.ravel()[i].tolist()}"
        )


def cell_scores(
    y_true: ArrayLike, y_pred: ArrayLike, protein_name: ArrayLike, split_group: ArrayLike, what: str = "predictions"
) -> dict[tuple[str, str], float]:
    """Average precision per non-empty (protein_name, split_group) cell. Long-form inputs: one entry per
    (molecule, protein) row. A cell without positives scores whatever sklearn returns for it (0.0 with a
    warning), as in the organisers' scorer."""
    from sklearn.metrics import (
        average_precision_score,  # sklearn takes ~0.5 s to import: only when scoring
    )

    y = np.asarray(y_true)
    p = np.asarray(y_pred, dtype=np.float64)
    prot = np.asarray(protein_name).astype(str)
    grp = np.asarray(split_group).astype(str)
    if not (len(y) == len(p) == len(prot) == len(grp)):
        raise SubmissionError(
            f"{what}: lengths differ (labels {len(y)}, predictions {len(p)}, "
            f"protein_name {len(prot)}, split_group {len(grp)})"
        )
    check_probabilities(p, what)
    scores: dict[tuple[str, str], float] = {}
    for pn in np.unique(prot):
        for g in np.unique(grp):
            sel = (prot == pn) & (grp == g)
            if sel.any():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "no positive class found": sklearn then returns 0.0
                    scores[(str(pn), str(g))] = float(average_precision_score(y[sel], p[sel]))
    return scores


def belka_ap(
    y_true: ArrayLike, y_pred: ArrayLike, protein_name: ArrayLike, split_group: ArrayLike, what: str = "predictions"
) -> float:
    """Mean of the per-(protein, split_group) average precisions; NaN when there are no rows."""
    s = cell_scores(y_true, y_pred, protein_name, split_group, what)
    return float(np.mean(list(s.values()))) if s else float("nan")


def split_groups(bb_ids: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """ "share" where all of a molecule's building blocks are in `seen` (a bool mask over building-block
    ids), else "nonshare". bb_ids: (n, 3) int building-block ids."""
    share = seen[np.asarray(bb_ids)].all(axis=1)
    return np.where(share, SHARE, NONSHARE)
