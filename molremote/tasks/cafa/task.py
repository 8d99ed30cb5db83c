"""CAFA trainer side: protein function (GO terms) from protein embeddings.

Samples are the annotated training proteins (train_terms.tsv, propagated up is_a / part_of). Labels: the
`top_k_*` most frequent propagated terms of each namespace, in the order BP, MF, CC (`aspect_sizes`). Features:
per-protein embeddings from the embedding cache (`molremote.embeddings`, spec `task.embedding` +
`task.embedding_policy`), computed for training and test sequences in `prepare_fold` and reused by every
experiment that asks for the same spec; standardised with the fold's training mean/std.

Batches: (x float32 (B, E), y float32 (B, L)) for "train", (x,) for "test". Loss: BCE, focal (alpha, gamma) or
BCE with per-label pos_weight (fitted on the fold's training rows). predict() -> {"p": sigmoid (B, L)}.
Score: CAFA's IA-weighted F-max (metric.py) of the max-propagated predictions against the full propagated
truth of the validation proteins (terms outside the label space count as missed). Baseline: each term's
frequency among the fold's training proteins, predicted for every validation protein.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import DataError, ExperimentError
from ...fsutil import atomic_path, write_json
from ..base import Task
from .data import FILES, CafaData, read_cafa
from .metric import CafaScore, cafa_score
from .ontology import ASPECTS, propagate_pairs
from .params import CafaParams
from .results import CafaResults
from .submission import MIN_SCORE, top_per_protein, write_long

if TYPE_CHECKING:
    from ...experiments import Experiment

MIN_VALID_SCORE = 0.01  # CAFA's lowest threshold: a lower score never counts, so it is not written
THRESHOLD_GRID = np.round(np.arange(0.10, 0.851, 0.05), 2)  # the write-up's per-term search grid


def calibrate(p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per-term monotone rescaling that maps each term's threshold to 0.5 (0 -> 0, 1 -> 1), so one global
    threshold sweep (F-max) applies the per-term thresholds."""
    t = np.clip(np.asarray(thresholds, dtype=np.float64), 1e-6, 1 - 1e-6)[None, :]
    p = np.asarray(p, dtype=np.float64)
    return np.where(p <= t, 0.5 * p / t, 0.5 + 0.5 * (p - t) / (1 - t))


def search_thresholds(p: np.ndarray, y: np.ndarray, grid: np.ndarray = THRESHOLD_GRID, chunk: int = 256) -> np.ndarray:
    """Per label, the grid threshold with the best F1 on (p, y) (the first best; 0.5 for a label without
    positives)."""
    out = np.full(p.shape[1], 0.5)
    for lo in range(0, p.shape[1], chunk):
        pc, yc = p[:, lo : lo + chunk], y[:, lo : lo + chunk].astype(bool)
        pred = pc[:, :, None] >= grid[None, None, :]
        tp = (pred & yc[:, :, None]).sum(axis=0)
        f1 = 2 * tp / np.maximum(pred.sum(axis=0) + yc.sum(axis=0)[:, None], 1)
        best = grid[np.argmax(f1, axis=1)]
        out[lo : lo + chunk] = np.where(yc.any(axis=0), best, 0.5)
    return out


class CafaTask(Task):
    params: CafaParams
    name = CafaResults.name
    metric_name = CafaResults.metric_name
    greater_is_better = CafaResults.greater_is_better
    data_help = (
        "Download the competition's files into data/cafa: `kaggle competitions download -c "
        "cafa-6-protein-function-prediction -p data/cafa && unzip data/cafa/cafa-6-protein-function-prediction.zip "
        "-d data/cafa` (accept the rules on kaggle.com first; files are found in data/cafa, data/cafa/Train and "
        "data/cafa/Test)."
    )

    def __init__(self, exp: Experiment):
        super().__init__(exp)
        self.data: CafaData | None = None
        self._folds: np.ndarray | None = None
        self.x_train: np.ndarray | None = None
        self.x_test: np.ndarray | None = None
        self.pos_weight: np.ndarray | None = None
        self.thresholds: np.ndarray | None = None

    # ------------------------------------------------------------------ data
    def _find(self, name: str) -> Path:
        d = self.data_dir()
        for p in (d / name, d / "Train" / name, d / "Test" / name):
            if p.exists():
                return p
        return self.require(name)[0]  # the DataError naming the file and how to get it

    def load(self) -> None:
        if self.data is not None:
            return
        data = read_cafa({n: self._find(n) for n in FILES})  # flat, or Kaggle's Train/ + Test/ layout
        self.data = data
        ont = data.ont
        p = self.params
        k = {"BP": p.top_k_bp, "MF": p.top_k_mf, "CC": p.top_k_cc}
        counts = np.bincount(data.truth_term, minlength=len(ont))
        labels, sizes = [], []
        for a in ASPECTS:
            cand = np.flatnonzero((ont.aspect == a) & (counts > 0))
            order = np.lexsort((cand, -counts[cand]))  # most frequent first, ties by term index
            chosen = np.sort(cand[order][: k[a]])
            labels.append(chosen)
            sizes.append(len(chosen))
        self.labels = np.concatenate(labels).astype(np.int64)
        self.aspect_sizes = sizes
        if len(self.labels) == 0:
            raise DataError(f"{self.data_dir()}: no annotated GO terms in train_terms.tsv")
        col = np.full(len(ont), -1, dtype=np.int64)
        col[self.labels] = np.arange(len(self.labels))
        m = col[data.truth_term] >= 0
        self.y = np.zeros((len(data.train.ids), len(self.labels)), dtype=np.uint8)
        self.y[data.truth_prot[m], col[data.truth_term[m]]] = 1

    def _d(self) -> CafaData:
        if self.data is None:
            self.load()
        assert self.data is not None
        return self.data

    def n_train(self) -> int:
        return len(self._d().train.ids)

    def n_test(self) -> int:
        return len(self._d().test.ids)

    def fold_assignment(self) -> np.ndarray:
        if self._folds is None:
            f = self.exp.folds
            if f.scheme != "random":
                raise ExperimentError(
                    f"cafa folds: scheme {f.scheme!r} unknown (cafa has 'random': K folds over proteins)",
                    field="folds.scheme",
                )
            order = np.random.default_rng(f.seed).permutation(self.n_train())
            self._folds = np.empty(self.n_train(), dtype=np.int64)
            self._folds[order] = np.arange(self.n_train()) % f.n_folds
        return self._folds

    def features(self) -> tuple[np.ndarray, np.ndarray]:
        """(train, test) embeddings from the embedding cache, float32."""
        from ...embeddings import EmbeddingSpec, embed_sequences

        d = self._d()
        spec = EmbeddingSpec(model=self.params.embedding, policy=self.params.embedding_policy)
        x = embed_sequences(spec, d.train.sequences + d.test.sequences)
        x = np.asarray(x, dtype=np.float32)
        return x[: self.n_train()], x[self.n_train() :]

    def prepare_fold(self, fold: int, train_idx: np.ndarray, run_dir: Path) -> None:
        xtr, xte = self.features()
        train_idx = np.asarray(train_idx)
        stats = Path(run_dir) / "preprocess" / "features.npz"
        if stats.is_file():  # a resumed run keeps the scaling its first session fitted
            z = np.load(stats)
            mean, std = z["mean"], z["std"]
        else:
            mean = xtr[train_idx].mean(axis=0) if self.params.standardize else np.zeros(xtr.shape[1], np.float32)
            std = xtr[train_idx].std(axis=0) + 1e-6 if self.params.standardize else np.ones(xtr.shape[1], np.float32)
            with atomic_path(stats) as tmp:
                np.savez(tmp, mean=mean, std=std)
        self.x_train = ((xtr - mean) / std).astype(np.float32)
        self.x_test = ((xte - mean) / std).astype(np.float32)
        pos = self.y[train_idx].sum(axis=0).astype(np.float64)
        w = (len(train_idx) - pos) / (pos + 1)
        w = w / max(w.min(), 1e-12)
        self.pos_weight = np.minimum(w, self.params.pos_weight_cap).astype(np.float32)

    def _x(self, split: str) -> np.ndarray:
        x = self.x_test if split == "test" else self.x_train
        if x is None:
            raise RuntimeError("cafa: call task.prepare_fold(fold, train_idx, run_dir) before model_info()/batch()")
        return x

    def model_info(self) -> dict[str, Any]:
        return {
            "n_features": int(self._x("train").shape[1]),
            "n_outputs": int(len(self.labels)),
            "aspect_sizes": list(self.aspect_sizes),
        }

    # ------------------------------------------------------------------ torch side
    def batch(self, split: str, idx: np.ndarray, device: Any) -> Any:
        import torch

        x = torch.from_numpy(self._x(split)[idx]).to(device)
        if split == "test":
            return (x,)
        return x, torch.from_numpy(self.y[idx].astype(np.float32)).to(device)

    def loss(self, model: Any, batch: Any) -> Any:
        import torch
        import torch.nn.functional as F

        x, y = batch
        logits = model(x)
        p = self.params
        if p.loss == "focal":  # Lin et al. 2017, as the write-up: alpha on positives, (1 - p_t)^gamma
            bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
            prob = torch.sigmoid(logits)
            pt = torch.where(y == 1, prob, 1 - prob)
            alpha = torch.where(y == 1, p.focal_alpha, 1 - p.focal_alpha)
            return (alpha * (1 - pt) ** p.focal_gamma * bce).mean()
        if p.loss == "weighted_bce":
            if self.pos_weight is None:
                raise RuntimeError("cafa: weighted_bce needs prepare_fold() first")
            return F.binary_cross_entropy_with_logits(
                logits, y, pos_weight=torch.from_numpy(self.pos_weight).to(x.device)
            )
        return F.binary_cross_entropy_with_logits(logits, y)

    def predict(self, model: Any, batch: Any) -> dict[str, np.ndarray]:
        import torch

        with torch.no_grad():
            return {"p": model(batch[0]).sigmoid().float().cpu().numpy()}

    # ------------------------------------------------------------------ metric
    def _pairs(self, rows: np.ndarray, p: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Propagated (row id, term index, score) of a (n, L) probability matrix; scores below min_score
        dropped first (a max-propagated score below it stays below it)."""
        r, c = np.nonzero(p >= min_score)
        return propagate_pairs(self._d().ont, np.asarray(rows)[r], self.labels[c], p[r, c])

    def _truth(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self._d()
        m = np.isin(d.truth_prot, idx)
        return d.truth_prot[m], d.truth_term[m]

    def score_details(self, valid_idx: np.ndarray, p: np.ndarray) -> CafaScore:
        d = self._d()
        valid_idx = np.asarray(valid_idx)
        return cafa_score(
            d.ont, d.ia, self._truth(valid_idx), self._pairs(valid_idx, p, MIN_VALID_SCORE), propagated=True
        )

    def score(self, valid_idx: np.ndarray, outputs: dict[str, np.ndarray]) -> float:
        return self.score_details(valid_idx, outputs["p"]).fmax_w

    def naive_pairs(self, train_idx: np.ndarray, valid_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CAFA's naive baseline: every term scored by its frequency among the training proteins annotated in
        its namespace, the same for every validation protein."""
        d = self._d()
        tp, tt = self._truth(np.asarray(train_idx))
        freq = np.zeros(len(d.ont))
        for a in ASPECTS:
            m = d.ont.aspect[tt] == a
            n = len(np.unique(tp[m]))
            if n:
                freq += np.bincount(tt[m], minlength=len(d.ont)) / n
        terms = np.flatnonzero(freq >= MIN_VALID_SCORE)
        valid_idx = np.asarray(valid_idx)
        return np.repeat(valid_idx, len(terms)), np.tile(terms, len(valid_idx)), np.tile(freq[terms], len(valid_idx))

    def baseline_score(self, valid_idx: np.ndarray) -> float:
        d = self._d()
        train = np.setdiff1d(np.arange(self.n_train()), valid_idx)
        pairs = self.naive_pairs(train, valid_idx)
        return cafa_score(d.ont, d.ia, self._truth(np.asarray(valid_idx)), pairs, propagated=True).fmax_w

    # ------------------------------------------------------------------ files
    def write_predictions(self, out_dir: Path, split: str, idx: np.ndarray, outputs: dict[str, np.ndarray]) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        d = self._d()
        idx = np.asarray(idx)
        p = np.asarray(outputs["p"], dtype=np.float64)
        out_dir = Path(out_dir)
        if split == "test":
            prot, term, score = self._test_pairs(p, out_dir)
            cols: dict[str, Any] = {"EntryID": d.test.ids[prot], "term": np.asarray(d.ont.terms)[term], "score": score}
        else:
            if self.params.per_term_thresholds:
                self._fit_thresholds(out_dir, idx, p)
            pp, pt, ps = self._pairs(idx, p, MIN_VALID_SCORE)
            tp, tt = self._truth(idx)
            n = len(d.ont)
            pk, tk = pp * n + pt, tp * n + tt
            keys = np.union1d(pk, tk)
            score = np.zeros(len(keys))
            score[np.searchsorted(keys, pk)] = ps
            truth = np.isin(keys, tk)
            prot, term = keys // n, keys % n
            cols = {
                "EntryID": d.train.ids[prot],
                "term": np.asarray(d.ont.terms)[term],
                "aspect": d.ont.aspect[term],
                "score": score,
                "truth": truth.astype(np.int8),
                "ia": d.ia[term],
            }
        path = out_dir / f"{split}.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(pa.table(cols), tmp)
        return path

    def _fit_thresholds(self, out_dir: Path, idx: np.ndarray, p: np.ndarray) -> None:
        d = self._d()
        self.thresholds = search_thresholds(p, self.y[idx])
        raw = self.score_details(idx, p)
        cal = self.score_details(idx, calibrate(p, self.thresholds))
        write_json(
            out_dir / "thresholds.json",
            {
                "grid": THRESHOLD_GRID.tolist(),
                "thresholds": dict(zip((d.ont.terms[t] for t in self.labels), self.thresholds.tolist())),
                # searched on these very rows: the calibrated figure is optimistic; evaluate scores the raw one
                "valid_fmax_w_raw": raw.fmax_w,
                "valid_fmax_w_calibrated_in_sample": cal.fmax_w,
            },
        )

    def _test_pairs(self, p: np.ndarray, out_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = self._d()
        if self.params.per_term_thresholds:
            if self.thresholds is None and out_dir is not None and (out_dir / "thresholds.json").is_file():
                saved = json.loads((out_dir / "thresholds.json").read_text())["thresholds"]
                self.thresholds = np.array([saved[d.ont.terms[t]] for t in self.labels])
            if self.thresholds is not None:
                p = calibrate(p, self.thresholds)
        prot, term, score = self._pairs(np.arange(len(p)), p, MIN_SCORE)
        return top_per_protein(prot, term, score, self.params.max_terms)

    def write_submission(self, path: Path, test_outputs: dict[str, np.ndarray]) -> Path:
        """The long-format TSV (`submission.tsv` beside the `path` the trainer names)."""
        d = self._d()
        prot, term, score = self._test_pairs(
            np.asarray(test_outputs["p"], dtype=np.float64), Path(path).parent / "predictions"
        )
        out = Path(path).with_suffix(".tsv")
        write_long(out, d.test.ids[prot], np.asarray(d.ont.terms)[term], score, max_terms=self.params.max_terms)
        return out
