"""Per-fold feature preprocessing (torch-free, scikit-learn): fitted once per run, saved in the run folder,
reused for validation, test and resumed runs.

Pipeline (each step optional, from MoaParams): QuantileTransformer (normal output) on the g- and c- columns;
PCA and factor analysis components of the (transformed) g- and c- blocks appended; VarianceThreshold over the
continuous features; cp_time / cp_dose codes in front (cp_type is constant once control rows are dropped).
Fitted on the fold's training rows, or on those plus the test rows with `fit_on="train+test"` (as the
winners did; the validation rows are never seen). The fitted object is pickled to
`<run>/preprocess/preprocess.pkl` with `preprocess.json` beside it (the parameters, the feature count and a
SHA-256 of the transformed training features): a resumed run loads it instead of refitting, and a changed
input that would give different features is refused.
"""
from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError, ExperimentError
from ...fsutil import atomic_path, write_json
from .data import Features
from .params import MoaParams

PKL, META = "preprocess.pkl", "preprocess.json"


def _block(x: np.ndarray, q: Any, pca: Any, fa: Any) -> list[np.ndarray]:
    x = q.transform(x) if q is not None else x
    return [x] + [m.transform(x) for m in (pca, fa) if m is not None]


@dataclass
class Preprocessor:
    params: dict[str, Any]
    fitted: dict[str, Any] = field(default_factory=dict)  # name -> fitted sklearn object (or None)

    @classmethod
    def fit(cls, p: MoaParams, rows: Features) -> "Preprocessor":
        from sklearn.decomposition import PCA, FactorAnalysis
        from sklearn.feature_selection import VarianceThreshold
        from sklearn.preprocessing import QuantileTransformer

        out = cls(p.model_dump())
        for name, x, n_pca, n_fa in (("genes", rows.genes, p.pca_genes, p.fa_genes),
                                     ("cells", rows.cells, p.pca_cells, p.fa_cells)):
            q = None
            if p.quantile:
                q = QuantileTransformer(n_quantiles=min(p.n_quantiles, len(x)), output_distribution="normal",
                                        random_state=p.seed).fit(x)
                x = q.transform(x)
            pca = PCA(n_components=n_pca, random_state=p.seed).fit(x) if n_pca else None
            fa = FactorAnalysis(n_components=n_fa, random_state=p.seed).fit(x) if n_fa else None
            out.fitted[name] = (q, pca, fa)
        out.fitted["variance"] = None
        if p.variance_threshold is not None:
            cont = out._continuous(rows)
            if not (cont.var(axis=0) > p.variance_threshold).any():
                raise ExperimentError(f"variance_threshold {p.variance_threshold} removes every feature "
                                f"(largest variance {cont.var(axis=0).max():.3g})", field="task.variance_threshold")
            out.fitted["variance"] = VarianceThreshold(p.variance_threshold).fit(cont)
        return out

    def _continuous(self, f: Features) -> np.ndarray:
        return np.concatenate(_block(f.genes, *self.fitted["genes"]) + _block(f.cells, *self.fitted["cells"]),
                              axis=1)

    def transform(self, f: Features) -> np.ndarray:
        """(n, n_features) float32: cp_time code / 2 and cp_dose code, then the continuous features."""
        cont = self._continuous(f)
        if self.fitted.get("variance") is not None:
            cont = self.fitted["variance"].transform(cont)
        cat = np.stack([f.cat[:, 1] / 2.0, f.cat[:, 2]], axis=1)
        return np.ascontiguousarray(np.concatenate([cat, cont], axis=1), dtype=np.float32)


def digest(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()


def fit_or_load(p: MoaParams, fit_rows: Features, check_rows: Features, folder: Path) -> tuple[Preprocessor, str]:
    """The run's preprocessor: loaded from `folder` when a previous session saved it, else fitted on
    `fit_rows` and saved. `check_rows` (the fold's training rows) are transformed to fingerprint the
    features. Returns (preprocessor, "loaded" | "fitted")."""
    folder = Path(folder)
    pkl, meta = folder / PKL, folder / META
    if pkl.exists() and meta.exists():
        with open(pkl, "rb") as fh:
            pre = pickle.load(fh)  # our own file in our own run folder
        saved = json.loads(meta.read_text())
        got = digest(pre.transform(check_rows))
        if got != saved["train_features_sha256"]:
            raise DataError(f"{pkl}: the saved preprocessing gives different features for this fold's training "
                            f"rows than when it was fitted (sha256 {got[:12]} != {saved['train_features_sha256'][:12]}):"
                            " the data changed under a resumed run; start a fresh run instead")
        return pre, "loaded"
    pre = Preprocessor.fit(p, fit_rows)
    x = pre.transform(check_rows)
    with atomic_path(pkl) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(pre, fh, protocol=pickle.HIGHEST_PROTOCOL)
    write_json(meta, {"params": p.model_dump(), "fit_rows": len(fit_rows.sig_id), "n_features": int(x.shape[1]),
                      "train_features_sha256": digest(x)})
    return pre, "fitted"
