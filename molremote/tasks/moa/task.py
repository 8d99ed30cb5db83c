"""MoA trainer side. Training samples are the treated (`trt_cp`) training rows; control rows are dropped from
training and predicted as 0 in the test predictions and the submission. Features come from the run's fitted
preprocessing (preprocess.py, fitted in `prepare_fold`), then the stacked predictions of other experiments
(`data.stack`, appended as they are: probabilities); targets are the scored columns, or the non-scored ones
(`targets="nonscored"`, stage 1 of the 3-stage NN; its submission.csv then holds those columns).

Batches: (x float32 (B, n_features), y float32 (B, n_targets)) for "train", (x,) for "test". Loss: BCE with
logits on smoothed targets y * (1 - s) + s / 2 (s = task.label_smoothing; the winners' SmoothBCEwLogits).
Outputs: predict() -> {"p": sigmoid probabilities}. Score: mean column-wise log loss (metric.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import DataError, ExperimentError
from ...fsutil import atomic_path
from ..base import Task
from . import folds
from .data import FILES, Features, read_moa
from .metric import mean_columnwise_log_loss, prior_log_loss
from .params import MoaParams
from .preprocess import fit_or_load
from .results import LABEL, MoaResults, submission_spec

if TYPE_CHECKING:
    from ...experiments import Experiment


def _concat(a: Features, b: Features) -> Features:
    return Features(
        np.concatenate([a.sig_id, b.sig_id]),
        np.concatenate([a.cat, b.cat]),
        np.concatenate([a.genes, b.genes]),
        np.concatenate([a.cells, b.cells]),
        a.gene_cols,
        a.cell_cols,
    )


class MoaTask(Task):
    params: MoaParams
    name = MoaResults.name
    metric_name = MoaResults.metric_name
    greater_is_better = MoaResults.greater_is_better
    data_help = (
        "Download the competition's files into data/moa: `kaggle competitions download -c lish-moa -p "
        "data/moa && unzip data/moa/lish-moa.zip -d data/moa` (accept the rules on kaggle.com first)."
    )

    def __init__(self, exp: Experiment):
        super().__init__(exp)
        self._loaded = False
        self._folds: np.ndarray | None = None
        self.x_train: np.ndarray | None = None
        self.x_test: np.ndarray | None = None
        self.preprocess_source: str | None = None  # "fitted" | "loaded" after prepare_fold
        self.stacked: Any = None  # stacking.Stacked when data.stack names other experiments
        self.model_extras: dict[str, Any] = {}  # what prepare_fold adds to model_info (the DeepInsight mapping)
        self._aux = False  # the model has a non-scored head (models/two_heads.py): batches carry those targets

    # ------------------------------------------------------------------ data
    def load(self) -> None:
        if self._loaded:
            return
        self.require(*FILES)
        d = read_moa(self.data_dir())
        treated = ~d.train.control
        if not treated.any():
            raise DataError(f"{self.data_dir() / 'train_features.csv'}: every row is a control (ctl_vehicle)")
        self.data = d
        self.train = d.train.take(np.flatnonzero(treated))
        self.test = d.test
        self.fold_y = d.scored[treated]  # folds stratify on the scored targets whatever the run learns
        self.y, self.target_cols = self.fold_y, d.scored_cols
        if self.params.targets == "nonscored":
            keep = np.flatnonzero(d.nonscored[treated].sum(axis=0) > 0)  # all-zero columns: nothing to learn
            self.y = np.ascontiguousarray(d.nonscored[treated][:, keep])
            self.target_cols = [d.nonscored_cols[j] for j in keep]
        self.y_aux = d.nonscored[treated]  # non-scored targets: pre-training heads (two_heads) learn them
        self.drug = d.drug[treated]
        self._loaded = True

    def n_train(self) -> int:
        return len(self.y)

    def n_test(self) -> int:
        return len(self.test.sig_id)

    def fold_assignment(self) -> np.ndarray:
        if self._folds is None:
            f = self.exp.folds
            self._folds = folds.assign(f.scheme, self.fold_y, self.drug, f.n_folds, f.seed, self.params.drug_threshold)
        return self._folds

    def prepare_fold(self, fold: int, train_idx: np.ndarray, run_dir: Path) -> None:
        if not self.params.base_features:  # stage 3: the stacked predictions alone
            if self.stacked is None:
                raise ExperimentError(
                    "base_features=False needs data.stack (nothing else to learn from)", field="task.base_features"
                )
            self.x_train, self.x_test = self._stacked_features(train_idx)
            self.preprocess_source = "stacked only"
            return
        rows = self.train.take(np.asarray(train_idx))
        fit_rows = _concat(rows, self.test) if self.params.fit_on == "train+test" else rows
        self.x_train, self.x_test, self.preprocess_source = fit_or_load(
            self.params, fit_rows, self.train, self.test, Path(run_dir) / "preprocess"
        )
        if self.stacked is not None:  # other experiments' out-of-fold / test predictions, rows as row_ids()
            s_train, s_test = self._stacked_features(train_idx)
            self.x_train = np.hstack([self.x_train, s_train]).astype(np.float32)
            self.x_test = np.hstack([self.x_test, s_test]).astype(np.float32)

        p = self.params
        if p.deepinsight_pixels:  # the feature -> pixel map, fitted on the same rows as the preprocessing
            from . import deepinsight

            x_fit = self.x_train[np.asarray(train_idx)]
            if p.fit_on == "train+test":
                x_fit = np.concatenate([x_fit, self.x_test])
            self.model_extras = deepinsight.fit_or_load(
                x_fit,
                p.deepinsight_pixels,
                p.deepinsight_perplexity,
                p.deepinsight_method,
                p.seed,
                Path(run_dir) / "preprocess",
            )

    def _stacked_features(self, train_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stacked predictions, quantile-transformed per column when `stack_quantile` (fitted on the fold's
        training rows, plus the test rows with fit_on="train+test"; deterministic, so a resume sees the same)."""
        tr, te = self.stacked.train, self.stacked.test
        if self.params.stack_quantile:
            from sklearn.preprocessing import QuantileTransformer

            fit = tr[train_idx] if self.params.fit_on == "train" else np.vstack([tr[train_idx], te])
            qt = QuantileTransformer(
                n_quantiles=min(self.params.n_quantiles, len(fit)),
                output_distribution="normal",
                random_state=self.params.seed,
            ).fit(fit)
            tr, te = qt.transform(tr), qt.transform(te)
        return np.ascontiguousarray(tr, dtype=np.float32), np.ascontiguousarray(te, dtype=np.float32)

    def row_ids(self, split: str) -> np.ndarray:
        return self.test.sig_id if split == "test" else self.train.sig_id

    def use_stacked(self, stacked: Any) -> None:
        self.stacked = stacked

    def _x(self, split: str) -> np.ndarray:
        x = self.x_test if split == "test" else self.x_train
        if x is None:
            raise RuntimeError("moa: call task.prepare_fold(fold, train_idx, run_dir) before model_info()/batch()")
        return x

    def model_info(self) -> dict[str, Any]:
        return {
            "n_features": int(self._x("train").shape[1]),
            "n_outputs": len(self.target_cols),
            **({"n_aux_outputs": self.y_aux.shape[1]} if self.y_aux.shape[1] else {}),
            **self.model_extras,
        }

    # ------------------------------------------------------------------ torch side
    def setup(self, model: Any, device: Any) -> None:
        self._aux = bool(getattr(model, "n_aux_outputs", 0))

    def batch(self, split: str, idx: np.ndarray, device: Any) -> Any:
        import torch

        x = torch.from_numpy(self._x(split)[idx]).to(device)
        if split == "test":
            return (x,)
        y = torch.from_numpy(self.y[idx]).to(device)
        if self._aux:
            return x, y, torch.from_numpy(self.y_aux[idx]).to(device)
        return x, y

    def loss(self, model: Any, batch: Any) -> Any:
        import torch.nn.functional as F

        x, y, *aux = batch
        if aux and getattr(getattr(model, "module", model), "aux_phase", False):
            y = aux[0]  # a two-heads model pre-training: its training output is the non-scored head's
        s = self.params.label_smoothing
        return F.binary_cross_entropy_with_logits(model(x), y * (1 - s) + 0.5 * s)

    def predict(self, model: Any, batch: Any) -> dict[str, np.ndarray]:
        import torch

        with torch.no_grad():
            return {"p": model(batch[0]).sigmoid().cpu().numpy()}

    # ------------------------------------------------------------------ metric and files
    def score(self, valid_idx: np.ndarray, outputs: dict[str, np.ndarray]) -> float:
        return mean_columnwise_log_loss(self.y[valid_idx], outputs["p"])

    def baseline_score(self, valid_idx: np.ndarray) -> float:
        """The per-column prior: each target's mean over the fold's training rows."""
        train = np.setdiff1d(np.arange(self.n_train()), valid_idx)
        return prior_log_loss(self.y[train], self.y[valid_idx])

    def _test_probabilities(self, p: np.ndarray) -> np.ndarray:
        p = np.array(p, dtype=np.float64)
        p[self.test.control] = 0.0  # control rows have no mechanism of action
        return p

    def write_predictions(self, out_dir: Path, split: str, idx: np.ndarray, outputs: dict[str, np.ndarray]) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        idx = np.asarray(idx)
        if split == "test":
            p = np.array(outputs["p"], dtype=np.float64)
            p[self.test.control[idx]] = 0.0  # control rows have no mechanism of action
            cols: dict[str, Any] = {"sig_id": self.test.sig_id[idx]}
            cols.update({c: p[:, j] for j, c in enumerate(self.target_cols)})
        else:
            p = np.asarray(outputs["p"], dtype=np.float64)
            cols = {"sig_id": self.train.sig_id[idx]}
            cols.update({c: p[:, j] for j, c in enumerate(self.target_cols)})
            cols.update({LABEL + c: self.y[idx, j].astype(np.int8) for j, c in enumerate(self.target_cols)})
        path = Path(out_dir) / f"{split}.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(pa.table(cols), tmp)
        return path

    def write_submission(self, path: Path, test_outputs: dict[str, np.ndarray]) -> Path:
        from ...results.submission_files import write_submission_atomic

        p = self._test_probabilities(test_outputs["p"])
        if p.shape != (self.n_test(), len(self.target_cols)):
            raise ValueError(f"submission needs {self.n_test()} x {len(self.target_cols)} probabilities, got {p.shape}")
        cols = self.data.submission_cols if self.params.targets == "scored" else self.target_cols
        table = {"sig_id": self.test.sig_id, **{c: p[:, j] for j, c in enumerate(cols)}}
        return write_submission_atomic(
            table, path, spec=submission_spec(cols), expected_ids=self.test.sig_id, overwrite=True
        )
