"""affinity's torch-free side: the submission format (`id,affinity`), ensemble defaults, and every metric of
a prediction file (`predictions/{valid,test}.parquet`, data.read_predictions).

The model-selection metric is `recall_at_10`: recall@10 averaged over protein -> ligand and ligand -> protein on
the validation pairs (metrics.py; a fixed sample of RETRIEVAL_MAX_PAIRS on large folds). `pair_metrics`
adds MRR and recall@1/5/10 both ways, Pearson / Spearman / RMSE / CI of the predicted affinity, the
contrastive loss, and the same figures for a random ranking and for the mean predictor (the fold's
training mean) on the same pairs. Ensembles average the predicted affinities by pair id.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ...results.submission_files import Predictions, SubmissionSpec
from ..base import EnsembleDefaults, TaskResults, TestMember
from . import metrics as am


def submission_spec() -> SubmissionSpec:
    """`id,affinity`: one row per test pair (its row in the test file), the predicted affinity (pK or
    score; the pair's cosine similarity when the model has no regression head)."""
    return SubmissionSpec("affinity", id_col="id", id_type="int", value_cols=("affinity",))


def _finite(x: float) -> float | None:
    return x if isinstance(x, float) and math.isfinite(x) else None


def pair_metrics(pred: dict[str, np.ndarray], *, batch_size: int, train_mean: float | None = None) -> dict[str, Any]:
    """Every metric of one prediction file (a dict from data.read_predictions), with its baselines."""
    s = am.sample_positions(len(pred["id"]))
    p_ids, l_ids = pred["prot_id"][s], pred["lig_id"][s]
    out: dict[str, Any] = {"n_pairs": int(len(pred["id"])), "n_retrieval_pairs": int(len(s))}
    out["retrieval"] = am.retrieval(p_ids, l_ids, pred["prot_emb"][s], pred["lig_emb"][s])
    out["random_retrieval"] = am.random_retrieval(p_ids, l_ids)
    both = lambda r: (r["p2l_recall@10"] + r["l2p_recall@10"]) / 2
    out["recall_at_10"] = both(out["retrieval"])
    out["random_recall_at_10"] = both(out["random_retrieval"])
    scale = float(pred["scale"][0]) if len(pred["scale"]) else 1.0
    out["contrastive_loss"] = am.contrastive_loss(
        pred["prot_id"], pred["lig_id"], pred["prot_emb"], pred["lig_emb"], scale, batch_size
    )
    y, a = pred["y"], pred["affinity"]
    ok = np.isfinite(y)
    if ok.any():
        score = a if np.isfinite(a[ok]).all() else am.pair_similarity(pred["prot_emb"], pred["lig_emb"])
        out["affinity_from"] = "regression head" if score is a else "cosine similarity (no regression head)"
        out["regression"] = {k: _finite(v) for k, v in am.regression(y[ok], score[ok]).items()}
        if train_mean is not None:
            out["mean_predictor"] = {
                "pearson": None,
                "spearman": None,
                "ci": 0.5,
                "rmse": am.rmse(y[ok], np.full(ok.sum(), train_mean)),
            }
    return out


def write_metrics(pred_path: Path, *, batch_size: int, train_mean: float | None) -> Path:
    """`<split>_metrics.json` next to a prediction file."""
    from ...fsutil import write_json
    from .data import read_predictions

    m = pair_metrics(read_predictions(pred_path), batch_size=batch_size, train_mean=train_mean)
    out = pred_path.with_name(pred_path.stem + "_metrics.json")
    write_json(out, m)
    return out


class AffinityResults(TaskResults):
    name = "affinity"
    metric_name = "recall_at_10"
    greater_is_better = True
    competition = None
    # predicted affinities of one scale (pK or the training score): their plain mean per pair
    ensemble = EnsembleDefaults(method="mean")
    oof_note = (
        "task 'affinity' has no pooled out-of-fold score (retrieval ranks pairs only within its own "
        "validation set, against that fold model's embeddings)"
    )

    def submission_spec(self, n_values: int | None = None) -> SubmissionSpec:
        return submission_spec()

    def fold_score(self, valid: Path) -> tuple[float, int]:
        from .data import read_predictions

        e = read_predictions(valid)
        s = am.sample_positions(len(e["id"]))
        return am.recall_at_10(e["prot_id"][s], e["lig_id"][s], e["prot_emb"][s], e["lig_emb"][s]), len(e["id"])

    def test_submission(self, members: Sequence[TestMember]) -> tuple[Predictions, SubmissionSpec, dict[str, Any]]:
        from ...results.averaging import average
        from .data import read_predictions

        preds = []
        for m in members:
            e = read_predictions(m.path)
            a = e["affinity"]
            if not np.isfinite(a).all():
                a = am.pair_similarity(e["prot_emb"], e["lig_emb"])
            if len(np.unique(e["id"])) != len(e["id"]):
                raise DataError(f"{m.path}: pair ids (id column) repeat")
            preds.append(Predictions(ids=e["id"], values=a[:, None], columns=("affinity",), id_col="id", source=m.key))
        d = self.ensemble
        return average(preds, method=d.method, normalise=d.normalise, axis=d.axis), submission_spec(), d.as_dict()
