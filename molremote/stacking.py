"""Stacking: other experiments' predictions as input features of an experiment (torch-free).

An experiment declares its parents in `data.stack`, e.g. `data={"stack": [{"experiment": 30}]}`; resolution
fills in each parent's name, config hash, task, seeds and folds (experiments.StackInput), so the resolved
JSON names the parent's runs exactly and a changed parent is a new child config. When fold k of the child
trains, `stacked_inputs` builds its features from the parent's finished runs (every fold, every seed):

  - training rows (the child's folds other than k): each row's out-of-fold prediction, from the parent run
    whose validation fold holds it (the parent's runs of the other folds: true out-of-fold, no row's feature
    comes from a model that saw its label);
  - validation rows (fold k): the parent's fold-k run's validation predictions;
  - test rows: the parent's test predictions averaged over its folds;
  - a parent with several seeds: its seeds averaged within each fold first.

Rows are matched by id (`Task.row_ids` on the child's side, `TaskResults.stack_features` reading the parent's
prediction files), never by position. Folds must match: the parent's `folds` (n_folds, scheme, seed) equal the
child's, and each parent fold's validation ids equal the child's rows of that fold (checked from the parent's
saved predictions, so task parameters that shape folds are covered too); otherwise ExperimentError (exit 2)
naming both experiments. A parent run missing here is pulled from the store (predictions only); one that
exists nowhere is a DataError (exit 3) naming the command that makes it. The task appends the features
(`Task.use_stacked`, then its `prepare_fold`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DataError, ExperimentError, MolremoteError
from .runs import MANIFEST, key_for, read_manifest

if TYPE_CHECKING:  # pragma: no cover
    from .experiments import Experiment, StackInput
    from .store.base import Store
    from .tasks.base import Task

PULL_SUBSETS = ["predictions"]  # stacking reads prediction files only


@dataclass
class Stacked:
    """The stacked features of one child fold, rows aligned with the child task's rows."""

    columns: list[str]
    train: np.ndarray  # (n_train, k) float32, rows as task.row_ids("train")
    test: np.ndarray  # (n_test, k) float32, rows as task.row_ids("test")
    sources: list[dict[str, Any]] = field(default_factory=list)  # per parent: experiment, runs (key, run_uid)


def _usable(path: Path) -> str:
    """Why a parent run folder cannot be used ("" when it can)."""
    try:
        m = read_manifest(path / MANIFEST)
    except MolremoteError as e:
        return str(e)
    if m is None:
        return "no run folder"
    if m.get("status") != "complete":
        return f"status {m.get('status')!r}, not 'complete'"
    missing = [s for s in ("valid", "test") if not (path / "predictions" / f"{s}.parquet").is_file()]
    return f"no predictions/{' or '.join(missing)}.parquet" if missing else ""


def parent_runs(
    child: Experiment, entry: StackInput, *, store: Store | None = None, runs_root: Path | None = None
) -> dict[int, list[Path]]:
    """{fold: the parent's complete run folders of that fold, one per seed} for every fold of the parent;
    runs missing here are pulled from `store`; DataError naming the command that makes any still missing."""
    from .project import runs_dir

    root = Path(runs_root or runs_dir())
    n = int((entry.folds or {}).get("n_folds", child.folds.n_folds))
    out: dict[int, list[Path]] = {}
    why: list[str] = []
    for f in range(n):
        for s in entry.seeds if entry.seeds is not None else [None]:
            key = key_for(str(entry.name), f, str(entry.config_hash), s)
            reason = _usable(root / key)
            if reason and store is not None:
                from .store.ops import pull_run

                try:
                    pull_run(key, store=store, only=PULL_SUBSETS, runs_root=root)
                    reason = _usable(root / key)
                    reason = f"pulled from {store.url}, but {reason}" if reason else ""
                except MolremoteError as e:
                    reason += f"; not in store {store.url} ({str(e).splitlines()[0]})"
            if reason:
                why.append(f"{key}: {reason}")
            else:
                out.setdefault(f, []).append(root / key)
    if why:
        raise DataError(
            f"experiment {child.name} stacks on experiment {entry.name} (config {entry.config_hash}), whose "
            f"out-of-fold predictions must exist for all its {n} folds: {'; '.join(why[:4])}"
            + (f" (and {len(why) - 4} more)" if len(why) > 4 else "")
            + f". Make them with `molremote train -e {entry.experiment} --all-folds`, or pull them from the store "
            f"(`molremote pull -e {entry.experiment}`)"
        )
    return out


def check_folds(child: Experiment, entry: StackInput) -> None:
    """The parent's folds section must equal the child's (n_folds, scheme, seed)."""
    mine = {k: getattr(child.folds, k) for k in ("n_folds", "scheme", "seed")}
    theirs = {k: (entry.folds or {}).get(k) for k in mine}
    if mine != theirs:
        show = ", ".join
        raise ExperimentError(
            f"experiment {child.name} stacks on {entry.name}, but their folds differ: {child.name} has "
            f"{show(f'{k}={v!r}' for k, v in mine.items())}, {entry.name} has "
            f"{show(f'{k}={v!r}' for k, v in theirs.items())}. Stacked out-of-fold predictions are only "
            "out-of-fold for the same folds: give both experiments the same folds section",
            field="data.stack",
        )


def _align(ids: np.ndarray, want: np.ndarray, what: str) -> np.ndarray:
    """Positions in `ids` of each of `want` (DataError naming `what` when some are absent)."""
    import pandas as pd

    pos = pd.Index(np.asarray(ids).astype(str)).get_indexer(np.asarray(want).astype(str))
    if (pos < 0).any():
        miss = np.asarray(want)[pos < 0]
        raise DataError(f"{what}: no prediction for {len(miss)} row(s), e.g. {miss[:3].tolist()}")
    return pos


def _mean_over(files: list[Path], reader: Any, want: np.ndarray | None) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(ids, columns, values) averaged over files (one per seed), aligned on the first file's ids (or `want`)."""
    ids0, cols, v0 = reader(files[0])
    ids = ids0 if want is None else want
    acc = v0[_align(ids0, ids, str(files[0]))].astype(np.float64)
    for f in files[1:]:
        i, c, v = reader(f)
        if c != cols:
            raise DataError(f"{f}: prediction columns differ from {files[0]}")
        acc += v[_align(i, ids, str(f))]
    return np.asarray(ids), cols, (acc / len(files)).astype(np.float32)


def stacked_inputs(
    child: Experiment, fold: int, task: Task, *, store: Store | None = None, runs_root: Path | None = None
) -> Stacked:
    """The features `data.stack` gives fold `fold` of `child` (see the module docstring), rows as the task's."""
    from .tasks import task_results

    train_ids = np.asarray(task.row_ids("train")).astype(str)
    test_ids = np.asarray(task.row_ids("test")).astype(str)
    assignment = np.asarray(task.fold_assignment())
    columns: list[str] = []
    train_parts, test_parts, sources = [], [], []
    for entry in child.data.stack:
        if entry.name is None or entry.config_hash is None:
            raise ExperimentError(
                f"data.stack entry {entry.experiment} is not resolved (load the experiment through its file)",
                field="data.stack",
            )
        check_folds(child, entry)
        results = task_results(str(entry.task or child.task.name))
        runs = parent_runs(child, entry, store=store, runs_root=runs_root)
        feat = np.full((len(train_ids), 0), np.nan, dtype=np.float32)
        cols: list[str] = []
        for f, paths in sorted(runs.items()):
            mine = train_ids[assignment == f]
            ids, c, v = _mean_over([p / "predictions" / "valid.parquet" for p in paths], results.stack_features, None)
            ids = np.asarray(ids).astype(str)
            if len(ids) != len(mine) or set(ids) != set(mine):
                only_p = sorted(set(ids) - set(mine))[:3]
                only_c = sorted(set(mine) - set(ids))[:3]
                raise ExperimentError(
                    f"experiment {child.name} stacks on {entry.name}, but fold {f} holds other rows in each: "
                    f"{entry.name} validated {len(ids)} rows in it, {child.name} has {len(mine)} (only in "
                    f"{entry.name}: {only_p}, only in {child.name}: {only_c}). Stacked predictions would not be "
                    "out-of-fold: give both the same folds and the task parameters that shape them",
                    field="data.stack",
                )
            if not cols:
                cols = list(c)
                feat = np.full((len(train_ids), len(cols)), np.nan, dtype=np.float32)
            elif list(c) != cols:
                raise DataError(f"{paths[0]}: prediction columns differ from {entry.name}'s other folds")
            rows = np.flatnonzero(assignment == f)
            feat[rows] = v[_align(ids, train_ids[rows], str(paths[0]))]
        test_files = [p / "predictions" / "test.parquet" for paths in runs.values() for p in paths]
        _, tc, tv = _mean_over(test_files, results.stack_features, test_ids)
        if list(tc) != cols:
            raise DataError(f"{test_files[0]}: test prediction columns differ from the validation ones")
        columns += [f"{entry.name}:{c}" for c in cols]
        train_parts.append(feat)
        test_parts.append(tv)
        sources.append(
            {
                "experiment": entry.experiment,
                "name": entry.name,
                "config_hash": entry.config_hash,
                "columns": len(cols),
                "runs": [
                    {"key": f"{p.parent.name}/{p.name}", "run_uid": (read_manifest(p / MANIFEST) or {}).get("run_uid")}
                    for paths in runs.values()
                    for p in paths
                ],
            }
        )
    return Stacked(columns, np.concatenate(train_parts, axis=1), np.concatenate(test_parts, axis=1), sources)


def check_unchanged(manifest: dict[str, Any] | None, stacked: Stacked, run_dir: Path) -> None:
    """A resumed run must see the same parent runs it started with (same run_uids): refuse otherwise."""
    before = (manifest or {}).get("stacked_on")
    if before is None or before == stacked.sources:
        return
    raise ExperimentError(
        f"{run_dir}: the runs it stacks on changed since it started (another run of a parent was trained or "
        "pulled): its features would change mid-run. Train it again with `--restart`",
        field="data.stack",
    )


def attach(
    exp: Experiment,
    fold: int,
    task: Task,
    *,
    store: Store | None = None,
    runs_root: Path | None = None,
    manifest: dict[str, Any] | None = None,
    run_dir: Path | None = None,
) -> Stacked | None:
    """Give `task` the stacked features of (exp, fold) when exp declares `data.stack`; None otherwise."""
    if not exp.data.stack:
        return None
    stacked = stacked_inputs(exp, fold, task, store=store, runs_root=runs_root)
    if run_dir is not None:
        check_unchanged(manifest, stacked, run_dir)
    task.use_stacked(stacked)
    return stacked


__all__ = ["Stacked", "attach", "check_folds", "parent_runs", "stacked_inputs"]
