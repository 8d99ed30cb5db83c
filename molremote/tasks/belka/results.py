"""BELKA's torch-free side: submission format, competition, ensemble defaults, and scoring the prediction files
a run writes (`predictions/valid.parquet`: id, protein_name, binds, binds_true, split_group;
`predictions/test.parquet`: id, protein_name, binds)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ...results.submission_files import (
    Predictions,
    SubmissionSpec,
    read_parquet_columns,
)
from ..base import OOF, EnsembleDefaults, TaskResults, TestMember

SUBMISSION = SubmissionSpec("belka", id_col="id", value_cols=("binds",), id_type="int", value_range=(0.0, 1.0))
VALID_COLS = ("id", "protein_name", "binds", "binds_true", "split_group")


class BelkaResults(TaskResults):
    name = "belka"
    metric_name = "belka_ap"
    greater_is_better = True
    competition = "leash-BELKA"
    # BELKA's 5th place averaged the nets' probabilities; all members share the BCE scale.
    ensemble = EnsembleDefaults(method="mean", normalise=None, axis="column")

    def submission_spec(self, n_values: int | None = None) -> SubmissionSpec:
        return SUBMISSION

    def _valid(self, path: Path) -> Any:
        return read_parquet_columns(path, VALID_COLS)

    def _score(self, t: Any, what: str) -> float:
        from .metric import belka_ap

        return belka_ap(
            t["binds_true"].to_numpy(),
            t["binds"].to_numpy(),
            t["protein_name"].to_numpy(zero_copy_only=False),
            t["split_group"].to_numpy(zero_copy_only=False),
            what=what,
        )

    def fold_score(self, valid: Path) -> tuple[float, int]:
        t = self._valid(valid)
        return self._score(t, str(valid)), t.num_rows

    def oof_score(self, valids: Sequence[Path]) -> float | None:
        """belka_ap on every fold's validation rows together; each row keeps the split_group of its own fold."""
        import pyarrow as pa

        tables = [self._valid(v).select(list(VALID_COLS)) for v in valids]
        ids = np.concatenate([t["id"].to_numpy() for t in tables])
        s = np.sort(ids)
        dup = np.unique(s[1:][s[1:] == s[:-1]])
        if len(dup):
            raise DataError(
                f"{len(dup)} validation row id(s) occur in more than one fold ({dup[:5].tolist()}...): "
                "these runs do not come from one fold split"
            )
        return self._score(pa.concat_tables(tables), "out-of-fold predictions")

    def oof(self, valids: Sequence[Path]) -> OOF:
        import pyarrow as pa

        from .metric import belka_ap

        t = pa.concat_tables([self._valid(v).select(list(VALID_COLS)) for v in valids])
        ids = t["id"].to_numpy()
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        if len(ids) > 1 and (ids[1:] == ids[:-1]).any():
            raise DataError(f"validation row ids occur in more than one fold of {', '.join(map(str, valids))}")
        protein = t["protein_name"].to_numpy(zero_copy_only=False)[order].astype(str)
        group = t["split_group"].to_numpy(zero_copy_only=False)[order].astype(str)
        # belka_ap's cells, found once: weight fitting scores the blend ~100-200 times, and finding the cells
        # (string compares over every row) costs as much as the six average precisions themselves.
        cells = [
            c
            for pn in np.unique(protein)
            for g in np.unique(group)
            if len(c := np.flatnonzero((protein == pn) & (group == g)))
        ]

        def score(y: np.ndarray, pred: np.ndarray) -> float:
            import warnings

            from sklearn.metrics import average_precision_score

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a cell without positives scores 0.0, as in belka_ap
                return (
                    float(np.mean([average_precision_score(y[c], pred[c]) for c in cells]))
                    if cells
                    else belka_ap(y, pred, protein, group, what="out-of-fold predictions")
                )

        return OOF(
            ids,
            t["binds_true"].to_numpy()[order],
            t["binds"].to_numpy()[order].astype(np.float64),
            score,
            source=str(Path(valids[0]).parent.parent.parent) if valids else "",
        )

    def test_submission(self, members: Sequence[TestMember]) -> tuple[Predictions, SubmissionSpec, dict[str, Any]]:
        from ...results.averaging import average

        tables = []
        for m in members:
            t = read_parquet_columns(m.path, ("id", "binds")).select(["id", "binds"])
            if t.num_rows == 0:
                raise DataError(f"{m.path}: no rows")
            tables.append((m.key, t))
        d = self.ensemble
        pred = average(tables, method=d.method, normalise=d.normalise, axis=d.axis, spec=SUBMISSION)
        return pred, SUBMISSION, {"method": d.method}
