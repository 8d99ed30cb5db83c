"""text2mol's torch-free side: submission format (`ID,0,...,n-1`), ensemble defaults, and scoring the prediction
files a run writes (`predictions/{valid,test}.parquet`: id, text_id, text_emb, mol_emb; read with
data.read_embeddings_parquet)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ...results.submission_files import Predictions, SubmissionSpec
from ..base import EnsembleDefaults, TaskResults, TestMember


def submission_spec(n_molecules: int | None = None) -> SubmissionSpec:
    """`ID,0,1,...,n-1`: one row per test text, one float similarity per test molecule (no range: raw
    cosine similarities or logits are both valid for a ranking metric)."""
    return SubmissionSpec("text2mol", id_col="ID", id_type="int", numbered_values=True, n_values=n_molecules)


class Text2MolResults(TaskResults):
    name = "text2mol"
    metric_name = "lrap"
    greater_is_better = True
    competition = None  # a Kaggle in-class competition of ALTEGRAD 2023/24; not public, no slug to submit to
    # Text2mol cosine similarities are not comparable between models (each learns its own temperature, so one
    # model's similarities spread over [-0.2, 0.9] and another's over [0.6, 0.99]). LRAP ranks each row (text
    # query) on its own, so an affine map per row leaves every member's score unchanged: z-scoring each row
    # puts members on one scale before averaging, as the ALTEGRAD 7-model average did.
    ensemble = EnsembleDefaults(method="mean", normalise="zscore", axis="row")
    # Each fold's model embeds texts and molecules in its own space, and LRAP ranks every text against the
    # candidate molecules of its own validation set: there is no meaningful pooled OOF score.
    oof_note = (
        "task 'text2mol' has no pooled out-of-fold score (each fold's model ranks only within its own validation set)"
    )

    def submission_spec(self, n_values: int | None = None) -> SubmissionSpec:
        return submission_spec(n_values)

    def fold_score(self, valid: Path) -> tuple[float, int]:
        from .data import lrap, read_embeddings_parquet

        e = read_embeddings_parquet(valid)
        return lrap(e["text_emb"], e["mol_emb"]), len(e["id"])

    def test_submission(self, members: Sequence[TestMember]) -> tuple[Predictions, SubmissionSpec, dict[str, Any]]:
        from ...results.averaging import average
        from .data import cosine_similarity, read_embeddings_parquet

        preds, mol_ids, first = [], None, None
        for m in members:
            e = read_embeddings_parquet(m.path)
            n = len(e["text_id"])
            order = np.argsort(e["text_id"], kind="stable")
            if not np.array_equal(e["text_id"][order], np.arange(n)):
                raise DataError(f"{m.path}: text_id must be the test_text.txt lines 0..{n - 1}, each once")
            ids = e["id"][order]  # row k pairs text k with molecule test_cids[k]: the submission's column order
            if mol_ids is None:
                mol_ids, first = ids, m.path
            elif not np.array_equal(ids, mol_ids):
                raise DataError(
                    f"{m.path}: test molecules (id column) differ from {first}: the runs did not use "
                    "the same test_cids.txt"
                )
            sim = cosine_similarity(e["text_emb"][order], e["mol_emb"][order])
            preds.append(
                Predictions(ids=np.arange(n), values=sim, columns=tuple(map(str, range(n))), id_col="ID", source=m.key)
            )
        d = self.ensemble
        pred = average(preds, method=d.method, normalise=d.normalise, axis=d.axis)
        return pred, submission_spec(len(mol_ids) if mol_ids is not None else None), d.as_dict()
