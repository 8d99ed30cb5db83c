"""The task contract, in two parts.

`TaskResults` (torch-free; used by evaluate, ensemble and kaggle_submit, and by `molremote ensemble -i` to
recognise a file): the metric's name and direction, the Kaggle competition, the submission format, the ensemble
defaults, and reading the prediction files a run leaves (`predictions/{valid,test}.*`) into scores, pooled
out-of-fold predictions and the fold-averaged test submission.

`Task` (the trainer's side; module-level imports stay torch-free, the torch-side methods import torch inside):
    task.load()                          read data; raise DataError naming the missing file + how to get it
    task.n_train(), task.n_test()
    task.fold_assignment() -> int array  fold id per training sample (exp.folds: n_folds, scheme, seed)
    task.row_ids(split) -> array         optional: the id of each "train" / "test" row (stacking matches by id)
    task.use_stacked(stacked)            optional: take other experiments' predictions as features
                                         (`data.stack`, molremote/stacking.py), before prepare_fold
    task.prepare_fold(fold, train_idx, run_dir)  optional: fit per-fold preprocessing, saved in the run folder
    task.model_info() -> dict            passed to the model builder (vocab size, outputs, feature dims)
    task.setup(model, device)            once after the model is built/loaded (e.g. cache frozen text embeddings)
    task.batch(split, idx, device)       batch for samples idx of split "train" | "test" ("valid" rows are
                                         training rows, so valid batches use split "train")
    task.loss(model, batch) -> scalar tensor
    task.predict(model, batch) -> {name: np.ndarray with len(idx) rows}
    task.score(valid_idx, outputs) -> float   the official metric on validation rows (outputs concatenated
                                         in valid_idx order)
    task.write_predictions(dir, split, idx, outputs)   predictions/<split>.<ext> that its TaskResults reads
    task.write_submission(path, test_outputs)  the competition's exact submission format

A task is registered by one line in `tasks/__init__.py` (params class, Task, TaskResults); nothing outside
`tasks/` names a task. docs/adding-a-task.md walks through a whole one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # pragma: no cover
    from ..experiments import Experiment
    from ..results.submission_files import Predictions, SubmissionSpec

DEMO_ROOT = Path(__file__).resolve().parent.parent / "demo_data"


class TaskParams(BaseModel):
    """Base of a task's parameters (`task={...}` in an experiment): unknown keys refused, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # parameters added after experiments were run: left out of the resolved JSON (and so the config hash) while
    # at their default, so those experiments keep their hash and their runs
    omit_when_default: ClassVar[tuple[str, ...]] = ()


# ---------------------------------------------------------------------------------------------- torch-free side
@dataclass(frozen=True)
class EnsembleDefaults:
    """How `molremote ensemble` / evaluate average this task's members when the user names nothing."""

    method: str = "mean"  # mean | rank | geo | logit (results.averaging.METHODS)
    normalise: str | None = None  # None | zscore | minmax, per column or per row (axis)
    axis: str = "column"

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "normalise": self.normalise, "axis": self.axis}


@dataclass
class OOF:
    """Out-of-fold predictions of one experiment, sorted by id: score(y, pred) is the task metric on them."""

    ids: np.ndarray
    y: np.ndarray
    pred: np.ndarray
    score: Callable[[np.ndarray, np.ndarray], float]
    source: str = ""


@dataclass
class TestMember:
    """One fold run's test predictions, as evaluate hands them to `TaskResults.test_submission`."""

    key: str  # run key, used as the member's name in records and messages
    path: Path  # predictions/test.<ext>
    notes: dict[str, Any] = field(default_factory=dict)


class TaskResults(ABC):
    """The torch-free side of a task: what evaluate / ensemble / kaggle_submit need to know about it."""

    name: ClassVar[str]
    metric_name: ClassVar[str]
    greater_is_better: ClassVar[bool] = True
    competition: ClassVar[str | None] = None  # Kaggle competition slug (kernels' sources, `--submit`)
    ensemble: ClassVar[EnsembleDefaults] = EnsembleDefaults()
    # why folds' validation predictions cannot be pooled into one OOF score (None: they can)
    oof_note: ClassVar[str | None] = None
    submission_filename: ClassVar[str] = "submission.csv"  # what evaluate names the submission it writes

    @abstractmethod
    def submission_spec(self, n_values: int | None = None) -> SubmissionSpec:
        """The submission file format; `n_values` fixes the value-column count where the task leaves it open."""

    def accepts_header(self, header: Sequence[str]) -> bool:
        """Whether a CSV header fits this task's submission format (`molremote ensemble -i` infers the task)."""
        from ..errors import SubmissionError
        from ..results.submission_files import check_header

        try:
            check_header(Path("header"), header, self.submission_spec())
        except SubmissionError:
            return False
        return True

    @abstractmethod
    def fold_score(self, valid: Path) -> tuple[float, int]:
        """(the metric on one fold's validation predictions file, its number of rows)."""

    def oof_score(self, valids: Sequence[Path]) -> float | None:
        """The metric on all folds' validation rows together; None where pooling is not meaningful."""
        return None

    def fold_details(self, valid: Path) -> dict[str, Any] | None:
        """Secondary figures of one fold's validation predictions (evaluate records them); None: none."""
        return None

    def oof(self, valids: Sequence[Path]) -> OOF | None:
        """All folds' validation predictions as one id-sorted vector with labels and the metric, for fitting
        blend weights; None where pooling folds is not meaningful."""
        return None

    @abstractmethod
    def test_submission(self, members: Sequence[TestMember]) -> tuple[Predictions, SubmissionSpec, dict[str, Any]]:
        """(the folds' test predictions averaged as the submission table, its format spec, notes for the record)."""

    def average_seeds(self, files: Sequence[Path], out: Path) -> Path:
        """One fold's prediction files of several seeds (same rows) as one file `out` in the same format, which
        evaluate then scores as the fold's. Default: floating-point columns averaged, every other column
        required equal (results/seeds.py); a task whose predictions cannot be averaged says so here."""
        from ..results.seeds import average_prediction_files

        return average_prediction_files(files, out)

    def stack_features(self, path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(row ids, column names, float matrix) of one prediction file (valid or test), for stacking it as
        another experiment's input features (molremote/stacking.py). Default: the submission's id column and
        every floating-point column; a task whose prediction rows are not samples says so here."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ..errors import DataError

        id_col = self.submission_spec().id_col
        t = pq.read_table(path)
        if id_col not in t.column_names:
            raise DataError(f"{path}: id column {id_col!r} missing: cannot stack these predictions")
        cols = [c for c in t.column_names if c != id_col and pa.types.is_floating(t.schema.field(c).type)]
        if not cols:
            raise DataError(f"{path}: no floating-point prediction columns to stack")
        ids = t[id_col].to_numpy(zero_copy_only=False)
        return ids, cols, np.stack([t[c].to_numpy() for c in cols], axis=1).astype(np.float32)

    def write_submission_file(self, pred: Predictions, path: Path, spec: SubmissionSpec, *, overwrite: bool) -> Path:
        """Write `test_submission`'s table in the competition's format, checked first, atomically (default: a
        CSV with a header; a long-format task writes its own)."""
        from ..results.submission_files import write_submission_atomic

        return write_submission_atomic(pred, path, spec=spec, overwrite=overwrite)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


# ---------------------------------------------------------------------------------------------- trainer side
class Task(ABC):
    name: ClassVar[str]
    metric_name: ClassVar[str]
    greater_is_better: ClassVar[bool] = True
    data_help: ClassVar[str] = ""  # where real data is expected and how to get it

    def __init__(self, exp: Experiment):
        from . import TASKS

        self.exp = exp
        # a task's registered params class is a TaskParams; subclasses narrow `params` to their own
        self.params: TaskParams = cast(TaskParams, TASKS[exp.task.name].params_class()(**exp.task.params))

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
                raise DataError(
                    f"data file {p} not found (experiment {self.exp.id}, "
                    f"data.root={self.exp.data.root!r}). "
                    f"{self.data_help}"
                )
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

    def row_ids(self, split: str) -> np.ndarray:
        """The id of each row of split "train" (the training samples, in index order) or "test", as the task's
        prediction files name them; stacking aligns another experiment's predictions with them."""
        from ..errors import ExperimentError

        raise ExperimentError(f"task {self.name} cannot take stacked predictions (no row ids)", field="data.stack")

    def use_stacked(self, stacked: Any) -> None:
        """Take a `stacking.Stacked` (other experiments' predictions, rows as row_ids) to append as features
        in prepare_fold. Default: the task takes none."""
        from ..errors import ExperimentError

        raise ExperimentError(
            f"task {self.name} does not take stacked predictions as features (data.stack)", field="data.stack"
        )

    def prepare_fold(self, fold: int, train_idx: np.ndarray, run_dir: Path) -> None:
        """Called by the trainer once per run, after split() and before model_info(): fit per-fold
        preprocessing on the training rows and keep it in `run_dir` (a resumed run loads it). Default: none."""
        return None

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
