"""Per-fold feature preprocessing (torch-free, scikit-learn): fitted once per run, saved in the run folder,
reused for validation, test and resumed runs.

Pipeline (each step optional, from MoaParams): QuantileTransformer (normal output) on the g- and c- columns;
PCA, factor analysis and UMAP (umap-learn, optional) components of the (transformed) g- and c- blocks
appended; VarianceThreshold over the continuous features; cp_time / cp_dose codes in front (cp_type is
constant once control rows are dropped). UMAP fits are also cached by content hash across runs, folds and
seeds (molremote/fitcache.py).
Fitted on the fold's training rows, or on those plus the test rows with `fit_on="train+test"` (as the
winners did; the validation rows are never seen). The fitted object is pickled to
`<run>/preprocess/preprocess.pkl`, the features it produced to `features.npz` (all training and test rows)
and `preprocess.json` (the parameters, the feature count, the features' SHA-256): a resumed run loads the
features instead of refitting, and a changed input that would give different features is refused.
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

PKL, META, FEATURES = "preprocess.pkl", "preprocess.json", "features.npz"


def _block(x: np.ndarray, q: Any, *reducers: Any) -> list[np.ndarray]:
    x = q.transform(x) if q is not None else x
    return [x] + [m.transform(x) for m in reducers if m is not None]


def _umap(n: int, p: MoaParams, x: np.ndarray) -> Any:
    """A fitted umap-learn UMAP (imported only when asked for: numba compiles for ~20 s on first use)."""
    if not n:
        return None
    try:
        from umap import UMAP
    except ImportError:
        raise ExperimentError(
            "umap_genes / umap_cells need the umap-learn package: pip install umap-learn", field="task.umap_genes"
        ) from None
    import umap as umap_pkg

    from ...fitcache import cached_fit

    kw = {"n_components": n, "n_neighbors": p.umap_neighbors, "random_state": p.seed, "n_jobs": 1}
    # cached by content: every fold, seed and run fitted on the same rows with the same settings shares one fit
    return cached_fit(
        "umap",
        [x],
        {**kw, "umap_version": umap_pkg.__version__},
        lambda: UMAP(**kw).fit(x),
    )


@dataclass
class Preprocessor:
    params: dict[str, Any]
    fitted: dict[str, Any] = field(default_factory=dict)  # name -> fitted sklearn object (or None)

    @classmethod
    def fit(cls, p: MoaParams, rows: Features) -> Preprocessor:
        from sklearn.decomposition import PCA, FactorAnalysis
        from sklearn.feature_selection import VarianceThreshold
        from sklearn.preprocessing import QuantileTransformer

        out = cls(p.model_dump())
        for name, x, n_pca, n_fa, n_umap in (
            ("genes", rows.genes, p.pca_genes, p.fa_genes, p.umap_genes),
            ("cells", rows.cells, p.pca_cells, p.fa_cells, p.umap_cells),
        ):
            q: Any = None
            if p.log_scale:  # DeepInsight's norm-2 scaling (deepinsight.LogScaler)
                from .deepinsight import LogScaler

                q = LogScaler().fit(x)
                x = q.transform(x)
            elif p.quantile:
                q = QuantileTransformer(
                    n_quantiles=min(p.n_quantiles, len(x)), output_distribution="normal", random_state=p.seed
                ).fit(x)
                x = q.transform(x)
            pca = PCA(n_components=n_pca, random_state=p.seed).fit(x) if n_pca else None
            fa = FactorAnalysis(n_components=n_fa, random_state=p.seed).fit(x) if n_fa else None
            out.fitted[name] = (q, pca, fa, _umap(n_umap, p, x))
        out.fitted["variance"] = None
        if p.variance_threshold is not None:
            cont = out._continuous(rows)
            if not (cont.var(axis=0) > p.variance_threshold).any():
                raise ExperimentError(
                    f"variance_threshold {p.variance_threshold} removes every feature "
                    f"(largest variance {cont.var(axis=0).max():.3g})",
                    field="task.variance_threshold",
                )
            out.fitted["variance"] = VarianceThreshold(p.variance_threshold).fit(cont)
        return out

    def _continuous(self, f: Features) -> np.ndarray:
        return np.concatenate(_block(f.genes, *self.fitted["genes"]) + _block(f.cells, *self.fitted["cells"]), axis=1)

    def transform(self, f: Features) -> np.ndarray:
        """(n, n_features) float32: cp_time code / 2 and cp_dose code, then the continuous features."""
        cont = self._continuous(f)
        if self.fitted.get("variance") is not None:
            cont = self.fitted["variance"].transform(cont)
        cat = np.stack([f.cat[:, 1] / 2.0, f.cat[:, 2]], axis=1)
        return np.ascontiguousarray(np.concatenate([cat, cont], axis=1), dtype=np.float32)


def digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for x in arrays:
        h.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    return h.hexdigest()


def raw_digest(*rows: Features) -> str:
    """SHA-256 of the input features (ids, categorical codes, g- and c- values) the preprocessing sees."""
    h = hashlib.sha256()
    for f in rows:
        h.update("\n".join(f.sig_id.tolist()).encode())
        for a in (f.cat, f.genes, f.cells):
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def fit_or_load(
    p: MoaParams, fit_rows: Features, train: Features, test: Features, folder: Path
) -> tuple[np.ndarray, np.ndarray, str]:
    """The run's features (all training rows, all test rows): loaded from `folder` when a previous session
    saved them, else the preprocessing is fitted on `fit_rows`, applied, and saved with its features.

    The features themselves are saved (features.npz), not only the fitted transforms: BLAS sums in PCA / FA
    transforms are not bit-reproducible across processes (thread count, memory alignment), and a resumed run
    must see exactly the features the first session trained on. On load, the current input data must hash to
    what the preprocessing was fitted on, else the data changed under the run (refused).
    Returns (x_train, x_test, "loaded" | "fitted")."""
    folder = Path(folder)
    pkl, meta, feats = folder / PKL, folder / META, folder / FEATURES
    if pkl.exists() and meta.exists() and feats.exists():
        with open(pkl, "rb") as fh:
            pre = pickle.load(fh)  # our own file in our own run folder
        saved = json.loads(meta.read_text())
        with np.load(feats) as z:
            x_train, x_test = z["train"], z["test"]
        if digest(x_train, x_test) != saved["features_sha256"]:
            raise DataError(f"{feats}: content does not match the sha256 in {meta} (file damaged); start a fresh run")
        if raw_digest(train, test) != saved["input_sha256"]:
            raise DataError(
                f"{feats}: the input data (train/test features) differ from those the saved "
                "preprocessing was fitted on: the data changed under a resumed run; start a fresh run "
                "instead"
            )
        return x_train, x_test, "loaded"
    pre = Preprocessor.fit(p, fit_rows)
    x_train, x_test = pre.transform(train), pre.transform(test)
    with atomic_path(pkl) as tmp, open(tmp, "wb") as fh:
        pickle.dump(pre, fh, protocol=pickle.HIGHEST_PROTOCOL)
    with atomic_path(feats, suffix=".npz") as tmp:
        np.savez(tmp, train=x_train, test=x_test)
    # written last: its presence marks a complete save
    write_json(
        meta,
        {
            "params": p.model_dump(),
            "fit_rows": len(fit_rows.sig_id),
            "n_features": int(x_train.shape[1]),
            "features_sha256": digest(x_train, x_test),
            "input_sha256": raw_digest(train, test),
        },
    )
    return x_train, x_test, "fitted"
