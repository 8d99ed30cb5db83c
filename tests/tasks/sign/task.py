"""The task's trainer side: data, folds, batches, loss, predictions and files. torch only inside methods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from molremote.fsutil import atomic_path
from molremote.tasks.base import Task

from .results import SUBMISSION, SignResults, accuracy


class SignTask(Task):
    name = SignResults.name
    metric_name = SignResults.metric_name
    greater_is_better = SignResults.greater_is_better
    data_help = "the sign task generates its data; there is nothing to download"

    def load(self) -> None:
        p = self.params
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(p.n + p.n_test, p.dim)).astype(np.float32)
        score = self.x @ rng.normal(size=p.dim) + p.noise * rng.normal(size=p.n + p.n_test)
        self.y = (score > 0).astype(np.float32)

    def n_train(self) -> int:
        return self.params.n

    def n_test(self) -> int:
        return self.params.n_test

    def fold_assignment(self) -> np.ndarray:
        rng = np.random.default_rng(self.exp.folds.seed)
        return rng.permutation(self.params.n) % self.exp.folds.n_folds

    def model_info(self) -> dict[str, Any]:
        return {"dim": self.params.dim}

    def _rows(self, split: str, idx: np.ndarray) -> np.ndarray:
        return np.asarray(idx) + (0 if split in ("train", "valid") else self.params.n)

    def batch(self, split: str, idx: np.ndarray, device: Any) -> Any:
        import torch

        rows = self._rows(split, idx)
        return torch.from_numpy(self.x[rows]).to(device), torch.from_numpy(self.y[rows]).to(device)

    def loss(self, model: Any, batch: Any) -> Any:
        import torch.nn.functional as F

        x, y = batch
        return F.binary_cross_entropy_with_logits(model(x).squeeze(-1), y)

    def predict(self, model: Any, batch: Any) -> dict[str, np.ndarray]:
        import torch

        with torch.no_grad():
            return {"p": model(batch[0]).squeeze(-1).sigmoid().cpu().numpy()}

    def score(self, valid_idx: np.ndarray, outputs: dict[str, np.ndarray]) -> float:
        return accuracy(self.y[valid_idx], outputs["p"])

    def write_predictions(self, out_dir: Path, split: str, idx: np.ndarray, outputs: dict[str, np.ndarray]) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = self._rows(split, idx)
        cols = {"row": rows.astype(np.int64), "p_positive": outputs["p"].astype(np.float64)}
        if split == "valid":
            cols["label"] = self.y[rows].astype(np.int8)
        path = Path(out_dir) / f"{split}.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(pa.table(cols), tmp)
        return path

    def write_submission(self, path: Path, test_outputs: dict[str, np.ndarray]) -> Path:
        from molremote.results.submission_files import write_submission_atomic

        rows = self._rows("test", np.arange(self.params.n_test))
        return write_submission_atomic(
            {"row": rows, "p_positive": test_outputs["p"].astype(np.float64)}, path, spec=SUBMISSION, overwrite=True
        )
