"""MoA's torch-free side: submission format (`sig_id` + the scored target columns, probabilities in [0, 1]),
ensemble defaults and scoring the prediction files a run writes.

Prediction files (task.py): predictions/valid.parquet: sig_id, one column per scored target (probability)
and its label as `true__<target>`; predictions/test.parquet: sig_id and the probabilities for every test row,
control rows already 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ...results.submission_files import Predictions, SubmissionSpec
from ..base import OOF, EnsembleDefaults, TaskResults, TestMember
from .metric import mean_columnwise_log_loss

LABEL = "true__"  # prefix of the label columns in predictions/valid.parquet


def submission_spec(columns: Sequence[str] | None = None) -> SubmissionSpec:
    """`sig_id` + target columns (exactly `columns` when given: sample_submission.csv's order)."""
    return SubmissionSpec(
        "moa",
        id_col="sig_id",
        id_type="str",
        value_range=(0.0, 1.0),
        value_cols=tuple(columns) if columns is not None else None,
    )


def read_valid(path: Path) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """(sig_id, target columns, labels, predictions) of one predictions/valid.parquet."""
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    names = t.column_names
    if "sig_id" not in names:
        raise DataError(f"{path}: column 'sig_id' missing")
    cols = [c for c in names if c != "sig_id" and not c.startswith(LABEL)]
    missing = [c for c in cols if LABEL + c not in names]
    if not cols or missing:
        raise DataError(
            f"{path}: needs target columns and their {LABEL}<target> labels (missing labels for {missing[:3]})"
        )
    pred = np.stack([t[c].to_numpy() for c in cols], axis=1).astype(np.float64)
    y = np.stack([t[LABEL + c].to_numpy() for c in cols], axis=1).astype(np.float64)
    return t["sig_id"].to_numpy(zero_copy_only=False).astype(str), cols, y, pred


class MoaResults(TaskResults):
    name = "moa"
    metric_name = "logloss"
    greater_is_better = False
    competition = "lish-moa"
    # probabilities of one calibrated scale: the arithmetic mean, as every MoA blend did (log loss punishes the
    # over-confident values a rank or geometric average can produce)
    ensemble = EnsembleDefaults(method="mean")

    def submission_spec(self, n_values: int | None = None) -> SubmissionSpec:
        return submission_spec()

    def fold_score(self, valid: Path) -> tuple[float, int]:
        _, _, y, p = read_valid(valid)
        return mean_columnwise_log_loss(y, p), len(y)

    def oof(self, valids: Sequence[Path]) -> OOF:
        parts = [read_valid(v) for v in valids]
        cols = parts[0][1]
        for v, part in zip(valids, parts):
            if part[1] != cols:
                raise DataError(f"{v}: target columns differ from {valids[0]}")
        ids = np.concatenate([q[0] for q in parts])
        order = np.argsort(ids, kind="stable")
        return OOF(
            ids[order],
            np.concatenate([q[2] for q in parts])[order],
            np.concatenate([q[3] for q in parts])[order],
            mean_columnwise_log_loss,
        )

    def oof_score(self, valids: Sequence[Path]) -> float | None:
        o = self.oof(valids)
        return o.score(o.y, o.pred)

    def test_submission(self, members: Sequence[TestMember]) -> tuple[Predictions, SubmissionSpec, dict[str, Any]]:
        import pyarrow.parquet as pq

        from ...results.averaging import average
        from ...results.submission_files import read_parquet_columns

        cols = [c for c in pq.read_schema(members[0].path).names if c != "sig_id"]
        spec = submission_spec(cols)
        tables = [(m.key, read_parquet_columns(m.path, ("sig_id", *cols))) for m in members]
        return average(tables, method=self.ensemble.method, spec=spec, order="first"), spec, self.ensemble.as_dict()
