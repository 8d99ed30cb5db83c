"""The task's torch-free side: what `molremote evaluate` and `molremote ensemble` need.

Prediction files (written by task.py): predictions/valid.parquet (row, p_positive, label) and
predictions/test.parquet (row, p_positive). Submission: `row,p_positive`, one line per test point.
Metric: accuracy of p_positive > 0.5."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from molremote.results.submission_files import Predictions, SubmissionSpec, read_parquet_columns
from molremote.tasks.base import OOF, EnsembleDefaults, TaskResults, TestMember

SUBMISSION = SubmissionSpec("sign", id_col="row", value_cols=("p_positive",), id_type="int", value_range=(0.0, 1.0))


def accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(((np.asarray(p) > 0.5) == (np.asarray(y) > 0.5)).mean())


class SignResults(TaskResults):
    name = "sign"
    metric_name = "accuracy"
    greater_is_better = True
    competition = None  # not a Kaggle competition: `--submit` says so
    ensemble = EnsembleDefaults(method="mean")  # probabilities on one scale: a plain mean

    def submission_spec(self, n_values: int | None = None) -> SubmissionSpec:
        return SUBMISSION

    def fold_score(self, valid: Path) -> tuple[float, int]:
        t = read_parquet_columns(valid, ("row", "p_positive", "label"))
        return accuracy(t["label"].to_numpy(), t["p_positive"].to_numpy()), t.num_rows

    def oof(self, valids: Sequence[Path]) -> OOF:
        import pyarrow as pa

        cols = ["row", "p_positive", "label"]
        t = pa.concat_tables([read_parquet_columns(v, tuple(cols)).select(cols) for v in valids])
        order = np.argsort(t["row"].to_numpy(), kind="stable")
        return OOF(
            t["row"].to_numpy()[order],
            t["label"].to_numpy()[order],
            t["p_positive"].to_numpy()[order].astype(np.float64),
            accuracy,
        )

    def oof_score(self, valids: Sequence[Path]) -> float | None:
        o = self.oof(valids)
        return o.score(o.y, o.pred)

    def test_submission(self, members: Sequence[TestMember]) -> tuple[Predictions, SubmissionSpec, dict[str, Any]]:
        from molremote.results.averaging import average

        tables = [(m.key, read_parquet_columns(m.path, ("row", "p_positive"))) for m in members]
        return average(tables, method=self.ensemble.method, spec=SUBMISSION), SUBMISSION, {"method": "mean"}
