"""The task interface the trainer, evaluate and ensemble work through.

A task owns everything dataset-specific: reading files (real competition layout or the shipped demo),
fold assignment, turning index arrays into model-ready batches, the loss, prediction outputs, the official
metric, and the prediction/submission file formats. Module-level imports stay torch-free; the torch-side
methods (`batch`, `loss`, `predict`, `setup`) import torch inside.

Contract used by the trainer (molremote/training/trainer.py):
    task.load()                          read data; raise DataError naming the missing file + how to get it
    task.n_train(), task.n_test()
    task.fold_assignment() -> int array  fold id per training sample (exp.folds: n_folds, scheme, seed)
    task.model_info() -> dict            passed to the model builder (vocab size, outputs, feature dims)
    task.setup(model, device)            once after the model is built/loaded (e.g. cache frozen text embeddings)
    task.batch(split, idx, device)       batch for samples idx of split "train" | "test" ("valid" rows are
                                         training rows, so valid batches use split "train")
    task.loss(model, batch) -> scalar tensor
    task.predict(model, batch) -> {name: np.ndarray with len(idx) rows}
    task.score(valid_idx, outputs) -> float   the official metric on validation rows (outputs concatenated
                                         in valid_idx order)
    task.write_predictions(dir, split, idx, outputs)   predictions/<split>.parquet (ids, labels for valid,
                                         predictions) so evaluate/ensemble can read them without torch
    task.write_submission(path, test_outputs)  the competition's exact submission format
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # pragma: no cover
    from ..experiments import Experiment

DEMO_ROOT = Path(__file__).resolve().parent.parent / "demo_data"


class TaskParams(BaseModel):
    """Base of a task's parameters (`task={...}` in an experiment): unknown keys refused, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Task(ABC):
    name: ClassVar[str]
    metric_name: ClassVar[str]
    greater_is_better: ClassVar[bool] = True
    competition: ClassVar[str | None] = None  # Kaggle competition slug, for kernels' sources and submit
    data_help: ClassVar[str] = ""  # where real data is expected and how to get it

    def __init__(self, exp: "Experiment"):
        from . import TASKS

        self.exp = exp
        self.params = TASKS[exp.task.name].params_class()(**exp.task.params)

    # ------------------------------------------------------------------ data
    def data_dir(self) -> Path:
        """`data.root` (relative paths are taken from the project root; `$MOLREMOTE_DATA` and
        `/kaggle/input` searching are resolved here too), else the shipped demo data."""
        from ..project import project_root

        root = self.exp.data.root
        if root is None:
            return DEMO_ROOT / self.name
        p = Path(root).expanduser()
        return p if p.is_absolute() else project_root() / p

    def require(self, *names: str) -> list[Path]:
        """Paths of required data files; a DataError naming the first missing one and how to get it."""
        from ..errors import DataError

        d = self.data_dir()
        out = []
        for n in names:
            p = d / n
            if not p.exists():
                raise DataError(f"data file {p} not found (experiment {self.exp.id}, data.root={self.exp.data.root!r}). "
                                f"{self.data_help}")
            out.append(p)
        return out

    @abstractmethod
    def load(self) -> None: ...

    @abstractmethod
    def n_train(self) -> int: ...

    @abstractmethod
    def n_test(self) -> int: ...

    @abstractmethod
    def fold_assignment(self) -> np.ndarray: ...

    def split(self, fold: int) -> tuple[np.ndarray, np.ndarray]:
        """(train_idx, valid_idx) for one fold."""
        from ..errors import ExperimentError

        if not 0 <= fold < self.exp.folds.n_folds:
            raise ExperimentError(f"fold {fold} out of range 0..{self.exp.folds.n_folds - 1}", field="folds.n_folds")
        f = self.fold_assignment()
        return np.flatnonzero(f != fold), np.flatnonzero(f == fold)

    def model_info(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ torch side
    def setup(self, model: Any, device: Any) -> None:
        return None

    @abstractmethod
    def batch(self, split: str, idx: np.ndarray, device: Any) -> Any: ...

    @abstractmethod
    def loss(self, model: Any, batch: Any) -> Any: ...

    @abstractmethod
    def predict(self, model: Any, batch: Any) -> dict[str, np.ndarray]: ...

    # ------------------------------------------------------------------ metric and files
    @abstractmethod
    def score(self, valid_idx: np.ndarray, outputs: dict[str, np.ndarray]) -> float: ...

    def baseline_score(self, valid_idx: np.ndarray) -> float | None:
        """The metric of a trivial predictor (constant / random) on the same rows, for reports."""
        return None

    @abstractmethod
    def write_predictions(self, out_dir: Path, split: str, idx: np.ndarray, outputs: dict[str, np.ndarray]) -> Path: ...

    @abstractmethod
    def write_submission(self, path: Path, test_outputs: dict[str, np.ndarray]) -> Path: ...
