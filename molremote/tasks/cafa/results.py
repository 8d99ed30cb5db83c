"""CAFA's torch-free side: metric (IA-weighted F-max, metric.py), submission format (long TSV, submission.py),
ensemble defaults and scoring the prediction files a run writes.

Prediction files (task.py), long format, both sides already max-propagated over the ontology:
  predictions/valid.parquet  EntryID, term, aspect, score (0 = not predicted), truth (0/1), ia: every
                             predicted pair (score >= 0.01) and every true pair of the fold's validation proteins
  predictions/test.parquet   EntryID, term, score: each test protein's best `max_terms` terms (score >= 0.001)
  predictions/thresholds.json  per-term thresholds when the experiment searched them (task.per_term_thresholds)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ...results.submission_files import Predictions, SubmissionSpec
from ..base import EnsembleDefaults, TaskResults, TestMember
from .metric import CafaScore, score_long
from .submission import MAX_TERMS, SIG_FIGS, write_long

VALID_COLUMNS = ("EntryID", "term", "aspect", "score", "truth", "ia")
TEST_COLUMNS = ("EntryID", "term", "score")


def submission_spec() -> SubmissionSpec:
    """CAFA's long format, declared for the core's long-format machinery (results/long_format.py: `ensemble`
    aligns members by (protein, term), `ensemble -i` recognises a file by its first row); submission.py writes
    it and checks it line by line."""
    from ...results.long_format import LongFormat

    long = LongFormat(
        id_col="EntryID",
        key_col="term",
        value_col="score",
        sep="\t",
        header=False,
        value_range=(0.0, 1.0),
        low_inclusive=False,  # scores in (0, 1]
        high_inclusive=True,
        sig_figs=SIG_FIGS,
        max_per_id=MAX_TERMS,
        key_pattern=r"GO:\d{7}",
    )
    return SubmissionSpec(
        "cafa",
        id_col="EntryID",
        value_cols=("term", "score"),
        id_type="str",
        value_range=(0.0, 1.0),
        extension=".tsv",
        long=long,
    )


def read_valid(*paths: Path) -> CafaScore:
    """The metric on one fold's predictions/valid.parquet, or on several folds' together (out of fold)."""
    from ...results.submission_files import read_parquet_columns

    cols: dict[str, list[np.ndarray]] = {c: [] for c in VALID_COLUMNS}
    for path in paths:
        t = read_parquet_columns(path, VALID_COLUMNS)
        if t.num_rows == 0:
            raise DataError(f"{path}: no rows")
        for c in VALID_COLUMNS:
            cols[c].append(t[c].to_numpy(zero_copy_only=False))
    col = {c: np.concatenate(v) for c, v in cols.items()}
    return score_long(col["EntryID"], col["aspect"], col["score"], col["truth"], col["ia"])


def average_long(tables: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], weights: Sequence[float] | None = None):
    """Members' (protein, term, score) rows aligned by (protein, term), a missing pair counting as 0, averaged
    (weights default to equal). Returns (protein, term, score) sorted by protein then term."""
    w = np.ones(len(tables)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    prot = np.concatenate([np.asarray(t[0]).astype(str) for t in tables])
    term = np.concatenate([np.asarray(t[1]).astype(str) for t in tables])
    score = np.concatenate([np.asarray(t[2], dtype=np.float64) * wk for t, wk in zip(tables, w)])
    key = np.char.add(np.char.add(prot, "\t"), term)
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
    total = np.bincount(inv, weights=score, minlength=len(uniq))
    return prot[first], term[first], total


class CafaResults(TaskResults):
    name = "cafa"
    metric_name = "fmax_w"
    greater_is_better = True
    competition = "cafa-6-protein-function-prediction"
    # probabilities of one scale; CAFA ensembles average scores per (protein, term), missing = 0 (the
    # write-up's 3-model np.mean)
    ensemble = EnsembleDefaults(method="mean")
    submission_filename = "submission.tsv"

    def submission_spec(self, n_values: int | None = None) -> SubmissionSpec:
        return submission_spec()

    def fold_score(self, valid: Path) -> tuple[float, int]:
        s = read_valid(valid)
        return s.fmax_w, sum(ns.n_proteins for ns in s.namespaces.values())

    def oof_score(self, valids: Sequence[Path]) -> float | None:
        return read_valid(*valids).fmax_w  # folds hold disjoint proteins: their rows pool into one set

    def fold_details(self, valid: Path) -> dict[str, Any]:
        """Weighted and unweighted F-max, S-min and thresholds per namespace."""
        return read_valid(valid).as_dict()

    def test_submission(self, members: Sequence[TestMember]) -> tuple[Predictions, SubmissionSpec, dict[str, Any]]:
        from ...results.submission_files import read_parquet_columns

        tables = []
        for m in members:
            t = read_parquet_columns(m.path, TEST_COLUMNS)
            tables.append(tuple(t[c].to_numpy(zero_copy_only=False) for c in TEST_COLUMNS))
        prot, term, score = average_long(tables)
        pred = Predictions(
            ids=prot,
            values=score[:, None],
            columns=("score",),
            id_col="EntryID",
            source=", ".join(m.key for m in members),
            meta={"term": term},
        )
        return pred, submission_spec(), {**self.ensemble.as_dict(), "align": "(EntryID, term), missing = 0"}

    def write_submission_file(self, pred: Predictions, path: Path, spec: SubmissionSpec, *, overwrite: bool) -> Path:
        from ...results.submission_files import check_submission
        from .submission import check_long

        write_long(path, pred.ids, pred.meta["term"], pred.values[:, 0], max_terms=MAX_TERMS, overwrite=overwrite)
        check_long(path)
        check_submission(path, spec)  # the core's long-format check agrees
        return path
