"""Evaluate one experiment's fold runs without torch.

Given run folders (local or pulled) of one experiment, each with `predictions/valid.parquet` and
`predictions/test.parquet` (written by the task's `write_predictions`):
  - the task's metric per fold, and on all folds' validation rows together (out-of-fold, where meaningful);
  - test predictions averaged across folds BY ID (molremote.ensemble) into the competition's submission,
    checked against the task's format before it is written (atomically);
  - `evaluation.json` beside it: scores, runs (run keys, config hashes, file sha256), code commit.

Metrics come from torch-free task helpers (tasks/belka_metric.py, tasks/text2mol_data.py), looked up by task
name in EVALUATORS; importing this module imports neither torch nor the tasks' torch-side code.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import DataError, SubmissionError
from .submission import BELKA, Predictions, SubmissionSpec, sha256_file, text2mol_spec, write_submission_atomic

EVALUATION_NAME = "evaluation.json"


# ---------------------------------------------------------------------------------------------- runs
@dataclass
class RunInfo:
    path: Path
    key: str  # <NNNN_slug>/fold<k>-<confighash>
    fold: int
    manifest: dict[str, Any]
    config: dict[str, Any]

    @property
    def task(self) -> str:
        t = self.config.get("task")
        return t.get("name") if isinstance(t, dict) else t

    def prediction(self, split: str) -> Path:
        p = self.path / "predictions" / f"{split}.parquet"
        if not p.is_file():
            raise DataError(f"{p}: no {split} predictions in run {self.key} (status "
                            f"{self.manifest.get('status')!r}); finish the run (`molremote train`) or pull it")
        return p


def load_run(path: Path | str) -> RunInfo:
    from .runs import read_json

    path = Path(path)
    man = read_json(path / "manifest.json")
    if man is None:
        raise DataError(f"{path / 'manifest.json'}: missing or not JSON: {path} is not a run folder")
    cfg = read_json(path / "config.json") or man.get("config") or {}
    if not cfg.get("task"):
        raise DataError(f"{path / 'config.json'}: missing or has no 'task': cannot tell which metric to use")
    fold = man.get("fold")
    if not isinstance(fold, int):
        raise DataError(f"{path / 'manifest.json'}: field 'fold' is {fold!r}, expected an integer")
    return RunInfo(path=path, key=f"{path.parent.name}/{path.name}", fold=fold, manifest=man, config=cfg)


def load_runs(paths: Sequence[Path | str], *, allow_incomplete: bool = False) -> list[RunInfo]:
    """Run folders of ONE experiment, one per fold, sorted by fold. Refuses mixed experiments or tasks,
    two runs of the same fold, and (unless allow_incomplete) runs that did not complete."""
    if not paths:
        raise DataError("no run folders to evaluate")
    runs = [load_run(p) for p in paths]
    first = runs[0]
    for r in runs[1:]:
        if r.manifest.get("experiment") != first.manifest.get("experiment"):
            raise DataError(f"{r.path}: experiment {r.manifest.get('experiment')!r}, but {first.path} is experiment "
                            f"{first.manifest.get('experiment')!r}: evaluate one experiment at a time "
                            "(average experiments with `molremote ensemble`)")
        if r.task != first.task:
            raise DataError(f"{r.path}: task {r.task!r}, but {first.path} has task {first.task!r}")
    by_fold: dict[int, RunInfo] = {}
    for r in runs:
        if r.fold in by_fold:
            raise DataError(f"two runs of fold {r.fold}: {by_fold[r.fold].path} and {r.path}; keep one")
        by_fold[r.fold] = r
        if not allow_incomplete and r.manifest.get("status") != "complete":
            raise DataError(f"{r.path}: run status is {r.manifest.get('status')!r}, not 'complete' (resume it with "
                            "`molremote train`, or pass --allow-incomplete to evaluate its last predictions)")
    return [by_fold[k] for k in sorted(by_fold)]


def _read_parquet(path: Path, columns: Sequence[str]):  # -> pyarrow.Table
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: cannot read as parquet: {e}") from None
    missing = [c for c in columns if c not in t.column_names]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(t.column_names)})")
    return t


# ---------------------------------------------------------------------------------------------- per task
class Evaluator:
    """Torch-free metric and test-averaging for one task."""

    task: str
    metric: str
    greater_is_better: bool = True

    def fold_score(self, valid: Path) -> tuple[float, int]:
        raise NotImplementedError

    def oof_score(self, valids: Sequence[Path]) -> float | None:
        return None

    def test_submission(self, runs: Sequence[RunInfo]) -> tuple[Predictions, SubmissionSpec, dict[str, Any]]:
        """(averaged test predictions as the submission table, its format spec, notes for the record)."""
        raise NotImplementedError


class BelkaEvaluator(Evaluator):
    task, metric = "belka", "belka_ap"
    VALID_COLS = ("id", "protein_name", "binds", "binds_true", "split_group")

    def _valid(self, path: Path):
        return _read_parquet(path, self.VALID_COLS)

    def _score(self, t: Any, what: str) -> float:
        from .tasks.belka_metric import belka_ap

        return belka_ap(t["binds_true"].to_numpy(), t["binds"].to_numpy(), t["protein_name"].to_numpy(zero_copy_only=False),
                        t["split_group"].to_numpy(zero_copy_only=False), what=what)

    def fold_score(self, valid: Path) -> tuple[float, int]:
        t = self._valid(valid)
        return self._score(t, str(valid)), t.num_rows

    def oof_score(self, valids: Sequence[Path]) -> float | None:
        """belka_ap on every fold's validation rows together; each row keeps the split_group of its own fold."""
        import pyarrow as pa

        tables = [self._valid(v).select(list(self.VALID_COLS)) for v in valids]
        ids = np.concatenate([t["id"].to_numpy() for t in tables])
        s = np.sort(ids)
        dup = np.unique(s[1:][s[1:] == s[:-1]])
        if len(dup):
            raise DataError(f"{len(dup)} validation row id(s) occur in more than one fold ({dup[:5].tolist()}...): "
                            "these runs do not come from one fold split")
        return self._score(pa.concat_tables(tables), "out-of-fold predictions")

    def test_submission(self, runs: Sequence[RunInfo]) -> tuple[Predictions, SubmissionSpec, dict[str, Any]]:
        from .ensemble import average

        members = [(r.key, _read_parquet(r.prediction("test"), ("id", "binds")).select(["id", "binds"])) for r in runs]
        for (name, t), r in zip(members, runs):
            if t.num_rows == 0:
                raise DataError(f"{r.prediction('test')}: no rows")
        pred = average(members, method="mean", spec=BELKA)
        return pred, BELKA, {"method": "mean"}


class Text2MolEvaluator(Evaluator):
    task, metric = "text2mol", "lrap"
    COLS = ("id", "text_id", "text_emb", "mol_emb")

    def fold_score(self, valid: Path) -> tuple[float, int]:
        from .tasks.text2mol_data import lrap, read_embeddings_parquet

        e = read_embeddings_parquet(valid)
        return lrap(e["text_emb"], e["mol_emb"]), len(e["id"])

    def oof_score(self, valids: Sequence[Path]) -> float | None:
        # Each fold's model embeds texts and molecules in its own space, and LRAP ranks every text against
        # the candidate molecules of its own validation set: there is no meaningful pooled OOF score.
        return None

    def test_submission(self, runs: Sequence[RunInfo]) -> tuple[Predictions, SubmissionSpec, dict[str, Any]]:
        from .ensemble import TASK_DEFAULTS, average
        from .tasks.text2mol_data import cosine_similarity, read_embeddings_parquet

        members, mol_ids = [], None
        for r in runs:
            path = r.prediction("test")
            e = read_embeddings_parquet(path)
            n = len(e["text_id"])
            order = np.argsort(e["text_id"], kind="stable")
            if not np.array_equal(e["text_id"][order], np.arange(n)):
                raise DataError(f"{path}: text_id must be the test_text.txt lines 0..{n - 1}, each once")
            ids = e["id"][order]  # row k pairs text k with molecule test_cids[k]: the submission's column order
            if mol_ids is None:
                mol_ids, first = ids, path
            elif not np.array_equal(ids, mol_ids):
                raise DataError(f"{path}: test molecules (id column) differ from {first}: the runs did not use "
                                "the same test_cids.txt")
            sim = cosine_similarity(e["text_emb"][order], e["mol_emb"][order])
            members.append(Predictions(ids=np.arange(n), values=sim, columns=tuple(map(str, range(n))), id_col="ID",
                                       source=r.key))
        d = TASK_DEFAULTS["text2mol"]
        pred = average(members, method=d["method"], normalise=d["normalise"], axis=d["axis"])
        return pred, text2mol_spec(len(mol_ids)), dict(d)


EVALUATORS: dict[str, Evaluator] = {"belka": BelkaEvaluator(), "text2mol": Text2MolEvaluator()}


def evaluator_for(task: str) -> Evaluator:
    try:
        return EVALUATORS[task]
    except KeyError:
        raise DataError(f"no torch-free evaluator for task {task!r} (have: {', '.join(sorted(EVALUATORS))})") from None


# ---------------------------------------------------------------------------------------------- evaluate
@dataclass
class Evaluation:
    experiment: Any
    task: str
    metric: str
    greater_is_better: bool
    fold_scores: dict[int, float]
    n_valid: dict[int, int]
    mean_fold_score: float
    oof_score: float | None  # all folds' validation rows together; None where not meaningful (text2mol)
    runs: list[dict[str, Any]]
    submission: Path | None = None
    record: Path | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["submission"] = str(self.submission) if self.submission else None
        d["record"] = str(self.record) if self.record else None
        d["fold_scores"] = {str(k): v for k, v in self.fold_scores.items()}
        d["n_valid"] = {str(k): v for k, v in self.n_valid.items()}
        return d


def evaluate_runs(run_dirs: Sequence[Path | str], *, out_dir: Path | str | None = None, submission: bool = True,
                  overwrite: bool = False, allow_incomplete: bool = False,
                  submission_name: str = "submission.csv") -> Evaluation:
    """Score each fold's validation predictions, the out-of-fold set, and (with out_dir and submission=True)
    write `out_dir/submission.csv` (test predictions averaged over folds by id, format-checked first) and
    `out_dir/evaluation.json`."""
    runs = load_runs(run_dirs, allow_incomplete=allow_incomplete)
    ev = evaluator_for(runs[0].task)
    fold_scores, n_valid = {}, {}
    for r in runs:
        fold_scores[r.fold], n_valid[r.fold] = ev.fold_score(r.prediction("valid"))
    oof = ev.oof_score([r.prediction("valid") for r in runs]) if len(runs) > 1 else fold_scores[runs[0].fold]
    result = Evaluation(
        experiment=runs[0].manifest.get("experiment"), task=ev.task, metric=ev.metric,
        greater_is_better=ev.greater_is_better, fold_scores=fold_scores, n_valid=n_valid,
        mean_fold_score=float(np.mean(list(fold_scores.values()))), oof_score=oof,
        runs=[{"run_key": r.key, "fold": r.fold, "config_hash": r.manifest.get("config_hash"),
               "run_uid": r.manifest.get("run_uid"), "status": r.manifest.get("status"),
               "code": r.manifest.get("code")} for r in runs])
    if out_dir is None or not submission:
        return result
    out_dir = Path(out_dir)
    sub_path = out_dir / submission_name
    if sub_path.exists() and not overwrite:
        raise SubmissionError(f"{sub_path}: already exists (pass overwrite=True / --overwrite to replace it)")
    pred, spec, notes = ev.test_submission(runs)
    write_submission_atomic(pred, sub_path, spec=spec, overwrite=overwrite)
    for r, d in zip(runs, result.runs):
        p = r.prediction("test")
        d["test_predictions"] = {"path": str(p.resolve()), "sha256": sha256_file(p)}
    from .ensemble import _write_json_atomic, code_version

    result.submission, result.notes = sub_path, {**notes, "rows": len(pred)}
    result.record = out_dir / EVALUATION_NAME
    _write_json_atomic(result.record, {**result.to_dict(), "code": code_version(),
                                       "submission_sha256": sha256_file(sub_path)})
    return result


def read_evaluation(path: Path | str) -> dict[str, Any]:
    p = Path(path)
    p = p / EVALUATION_NAME if p.is_dir() else p
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise DataError(f"{p}: no evaluation record") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{p}: not valid JSON: {e}") from None
