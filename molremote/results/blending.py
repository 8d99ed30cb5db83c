"""Evaluating a blend experiment (molremote/blends.py): its CV from the members' out-of-fold predictions, its
test submission, and a record that names every leaf run and its weight. Imports no torch.

A member is evaluated once (its own `evaluation-<hash>/`, reused when up to date) and read as
  - out-of-fold predictions (ids, labels, predictions; `TaskResults.oof`) with the fold of every row,
  - its test submission (sorted as the file is).
A blend's out-of-fold predictions are the weighted combination (`averaging.combine`, the task's method) of its
members' out-of-fold rows, row by row (members must cover the same rows with the same labels); its test
predictions the same combination of the members' test files aligned by id (`averaging.average`). Fixed weights are
scaled to sum 1; "auto" weights are fitted on the members' OOF rows with the task's metric
(`averaging.fit_weights`, SLSQP). A nested blend is a member like any other, so the leaf weights multiply down
the tree (and add up for an experiment that appears twice, as the simple NN does in MoA's winning blend).
Fold scores are reported when every member has the same fold for every row (else only the pooled OOF score).

The record `runs/<NNNN_slug>/evaluation-<blend hash>/evaluation.json` has the same keys as an experiment's
(task, metric, fold_scores, oof_score, runs, submission, config_hash, kaggle_submissions) plus kind "blend",
the member tree and the leaf weights, so `--submit`, `scores` and `report` treat it like an experiment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError, SubmissionError
from ..fsutil import write_json
from ..tasks import task_results
from ..tasks.base import OOF
from .evaluate import EVALUATION_NAME, read_evaluation
from .submission_files import Predictions, read_predictions, sha256_file, write_submission_atomic

if TYPE_CHECKING:  # pragma: no cover
    from ..blends import Blend
    from ..experiments import Registry


@dataclass
class Node:
    """One evaluated member (an experiment or a blend)."""

    name: str  # e0003 / b0039
    kind: str  # experiment | blend
    experiment: int
    config_hash: str
    oof: OOF | None
    folds: np.ndarray | None  # fold of each OOF row (None: members' folds differ, or no OOF)
    test: Predictions
    leaves: dict[int, float]  # leaf experiment id -> its weight inside this node (sum 1)
    runs: list[dict[str, Any]]  # every leaf run: run key, fold, config hash, run uid, code, experiment
    evaluation: str | None = None  # a leaf's evaluation.json
    weights: list[float] = field(default_factory=list)  # a blend's member weights (normalised)
    fit: dict[str, Any] | None = None
    children: list[Node] = field(default_factory=list)
    folds_note: str | None = None

    def tree(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "experiment": self.experiment}
        d["config_hash"] = self.config_hash
        d["oof_score"] = self.oof.score(self.oof.y, self.oof.pred) if self.oof is not None else None
        if self.kind == "experiment":
            d["evaluation"] = self.evaluation
            d["run_keys"] = [r["run_key"] for r in self.runs]
        else:
            d["members"] = [{**c.tree(), "weight": w} for c, w in zip(self.children, self.weights)]
            if self.fit:
                d["weights_fit"] = self.fit
        return d


def _fold_of_rows(oof: OOF, run_dirs: Sequence[Path], folds: Sequence[int], task: str) -> np.ndarray | None:
    """The fold of each of oof's rows, from each run's own validation file (None when a row is missing)."""
    ev = task_results(task)
    out = np.full(len(oof.ids), -1, dtype=np.int64)
    for d, f in zip(run_dirs, folds):
        part = ev.oof([d / "predictions" / "valid.parquet"])
        if part is None:
            return None
        pos = np.searchsorted(oof.ids, part.ids)
        ok = (pos < len(oof.ids)) & (oof.ids[np.minimum(pos, len(oof.ids) - 1)] == part.ids)
        out[pos[ok]] = f
    return None if (out < 0).any() else out


class _Evaluator:
    def __init__(self, reg: Registry, sets: list[str] | None, pull: bool, runs_root: Path | None, overwrite: bool):
        self.reg, self.sets, self.pull, self.runs_root = reg, sets or [], pull, runs_root
        self.overwrite = overwrite
        self.memo: dict[int, Node] = {}

    def node(self, i: int) -> Node:
        if i not in self.memo:
            self.memo[i] = self._blend(i) if self.reg.is_blend(i) else self._leaf(i)
        return self.memo[i]

    def _leaf(self, i: int) -> Node:
        from ..experiments import apply_overrides
        from .members import experiment_member

        exp = apply_overrides(self.reg.resolve(i), self.sets)
        if self.overwrite:  # `evaluate -e <blend> --overwrite` redoes a member evaluation of other runs too
            from .evaluate import evaluate_experiment

            evaluate_experiment(exp, pull=self.pull, runs_root=self.runs_root, overwrite=True)
        m = experiment_member(exp, pull=self.pull, runs_root=self.runs_root)
        rec = read_evaluation(m.evaluation) if m.evaluation else {}
        runs = [{**r, "experiment": exp.id, "experiment_name": exp.name} for r in rec.get("runs", [])]
        info = task_results(exp.task.name)
        spec = info.submission_spec()
        test = read_predictions(m.path, spec)
        folds = None
        if m.oof is not None:
            folds = _fold_of_rows(m.oof, m.run_dirs, [int(r["fold"]) for r in runs], exp.task.name)
        return Node(
            name=f"e{exp.id:04d}",
            kind="experiment",
            experiment=exp.id,
            config_hash=exp.config_hash,
            oof=m.oof,
            folds=folds,
            test=test,
            leaves={exp.id: 1.0},
            runs=runs,
            evaluation=str(m.evaluation) if m.evaluation else None,
        )

    def _blend(self, i: int) -> Node:
        from .averaging import average, combine, fit_weights, normalise_weights

        b = self.reg.blend(i)
        info = task_results(b.task)
        method = b.method or info.ensemble.method
        normalise, axis = info.ensemble.normalise, info.ensemble.axis
        kids = [self.node(m.experiment) for m in b.members]
        oof, why = _aligned(kids, b.task)
        preds = [k.oof.pred for k in kids if k.oof is not None]  # every member's when oof is not None
        fit = None
        if b.auto:
            if oof is None:
                raise SubmissionError(
                    f"blend {b.name} ({b.file}): 'auto' weights need out-of-fold predictions of every member: {why}"
                )
            f = fit_weights(
                preds,
                oof.y,
                oof.score,
                info.greater_is_better,
                method=method,
                normalise=normalise,
                axis=axis,
            )
            w = np.asarray(f.weights, dtype=np.float64)
            fit = f.record(len(oof.y))
        else:
            w = normalise_weights([float(m.weight) for m in b.members], len(b.members))
        blended = None
        if oof is not None:
            pred = combine(preds, w, method, normalise, axis)
            blended = OOF(oof.ids, oof.y, pred, oof.score, source=b.name)
        folds, note = None, why
        if oof is not None:
            fs = [k.folds for k in kids if k.folds is not None]
            if len(fs) == len(kids) and all(np.array_equal(fs[0], f) for f in fs[1:]):
                folds = fs[0]
            else:
                note = "members use different folds: only the pooled out-of-fold score is reported"
        test = average([k.test for k in kids], w, method, normalise=normalise, axis=axis, order="first")
        test.source = b.name
        leaves: dict[int, float] = {}
        runs: list[dict[str, Any]] = []
        seen: set[str] = set()
        for k, wk in zip(kids, w):
            for leaf, wl in k.leaves.items():
                leaves[leaf] = leaves.get(leaf, 0.0) + float(wk) * wl
            for r in k.runs:
                if r["run_key"] not in seen:
                    seen.add(r["run_key"])
                    runs.append(r)
        return Node(
            name=f"b{b.id:04d}",
            kind="blend",
            experiment=b.id,
            config_hash=b.config_hash,
            oof=blended,
            folds=folds,
            test=test,
            leaves=leaves,
            runs=runs,
            weights=[float(x) for x in w],
            fit=fit,
            children=kids,
            folds_note=note,
        )


def _aligned(kids: Sequence[Node], task: str) -> tuple[OOF | None, str | None]:
    """(the first member's OOF, None) when every member has OOF rows, else (None, why not). Members whose rows
    or labels differ are refused: they were not trained on the same data."""
    missing = [k.name for k in kids if k.oof is None]
    if missing:
        note = task_results(task).oof_note  # e.g. text2mol: folds' scores are not poolable
        return None, note or f"member(s) {', '.join(missing)} have no out-of-fold predictions"
    ref = kids[0].oof
    assert ref is not None
    for k in kids[1:]:
        o = k.oof
        assert o is not None
        if not np.array_equal(o.ids, ref.ids):
            raise DataError(
                f"{k.name}'s out-of-fold rows differ from {kids[0].name}'s ({len(o.ids)} vs {len(ref.ids)} rows): "
                "a blend's members must predict the same training rows (same data, every fold trained)"
            )
        if not np.array_equal(o.y, ref.y):
            raise DataError(f"{k.name}'s out-of-fold labels differ from {kids[0].name}'s: not the same data")
    return ref, None


# ---------------------------------------------------------------------------------------------- evaluate
def blend_hash(b: Blend, sets: Sequence[str] | None = None) -> str:
    """The blend's config hash, or with `--set` overrides applied to its leaves a hash of both (the members'
    runs then have other config hashes: another evaluation)."""
    if not sets:
        return b.config_hash
    import hashlib
    import json

    return hashlib.sha256(json.dumps([b.config_hash, list(sets)]).encode()).hexdigest()[:12]


def blend_dir(b: Blend, runs_root: Path | None = None, sets: Sequence[str] | None = None) -> Path:
    from ..project import runs_dir

    return Path(runs_root or runs_dir()) / b.name / f"evaluation-{blend_hash(b, sets)}"


def _fingerprint(runs: Sequence[dict[str, Any]]) -> list[list[Any]]:
    return sorted([r.get("run_key"), r.get("run_uid"), (r.get("test_predictions") or {}).get("sha256")] for r in runs)


def evaluate_blend(
    reg: Registry,
    i: int,
    *,
    sets: list[str] | None = None,
    pull: bool = True,
    overwrite: bool = False,
    runs_root: Path | None = None,
) -> tuple[dict[str, Any], bool]:
    """Evaluate blend i into runs/<blend>/evaluation-<hash>/ (submission.csv + evaluation.json): (record, reused).

    `sets` (`--set key=value`) apply to every leaf experiment, as the overrides their runs were trained with.
    A record of the very same leaf runs is reused as it is; one of other runs is replaced only with overwrite
    (its Kaggle submissions are carried over)."""
    from .averaging import code_version

    b = reg.blend(i)
    info = task_results(b.task)
    evaluator = _Evaluator(reg, sets, pull, runs_root, overwrite)
    top = evaluator.node(i)
    out = blend_dir(b, runs_root, sets)
    sub_path = out / "submission.csv"
    old = read_evaluation(out) if (out / EVALUATION_NAME).is_file() else None
    if old is not None and sub_path.is_file():
        same = _fingerprint(old.get("runs", [])) == _fingerprint(top.runs) and sha256_file(sub_path) == old.get(
            "submission_sha256"
        )
        if same and not overwrite:
            return old, True
        if not overwrite:
            raise SubmissionError(
                f"{out}: holds an evaluation of other member runs (or its submission changed); pass --overwrite "
                "to replace it"
            )
    fold_scores: dict[str, float] = {}
    n_valid: dict[str, int] = {}
    oof_score = None
    if top.oof is not None:
        o = top.oof
        oof_score = float(o.score(o.y, o.pred))
        if top.folds is not None:
            for f in sorted(set(top.folds.tolist())):
                mask = top.folds == f
                fold_scores[str(f)] = float(o.score(o.y[mask], o.pred[mask]))
                n_valid[str(f)] = int(mask.sum())
    spec = info.submission_spec()
    write_submission_atomic(top.test, sub_path, spec=spec, overwrite=True)
    leaves = [  # every leaf experiment: its weight in the whole blend and the runs that made its predictions
        {
            "experiment": e,
            "name": reg.files[e].stem,
            "config_hash": evaluator.memo[e].config_hash,  # with --set applied: the runs' own hash
            "weight": w,
            "evaluation": evaluator.memo[e].evaluation,
            "run_keys": [r["run_key"] for r in top.runs if r.get("experiment") == e],
        }
        for e, w in top.leaves.items()
    ]
    rec: dict[str, Any] = {
        "kind": "blend",
        "experiment": b.id,
        "experiment_name": b.name,
        "config_hash": blend_hash(b, sets),
        "task": b.task,
        "metric": info.metric_name,
        "greater_is_better": info.greater_is_better,
        "method": b.method or info.ensemble.method,
        "sets": list(sets or []),
        "fold_scores": fold_scores,
        "n_valid": n_valid,
        "mean_fold_score": float(np.mean(list(fold_scores.values()))) if fold_scores else None,
        "oof_score": oof_score,
        "folds_note": top.folds_note,
        "leaf_weights": leaves,
        "members": top.tree()["members"],
        "weights_fit": top.fit,
        "runs": top.runs,
        "submission": str(sub_path),
        "submission_sha256": sha256_file(sub_path),
        "record": str(out / EVALUATION_NAME),
        "notes": {"rows": len(top.test)},
        "code": code_version(),
    }
    if old is not None and old.get("kaggle_submissions"):
        rec["kaggle_submissions"] = old["kaggle_submissions"]  # what was sent stays on record
    write_json(out / EVALUATION_NAME, rec)
    return rec, False


def blend_member(reg: Registry, i: int, *, pull: bool = True, runs_root: Path | None = None):  # -> Member
    """Blend i as a member of `molremote ensemble`: its evaluated submission and blended out-of-fold rows."""
    from ..project import runs_dir
    from .members import Member

    rec, _ = evaluate_blend(reg, i, pull=pull, runs_root=runs_root)
    node = _Evaluator(reg, None, pull, runs_root, False).node(i)
    root = Path(runs_root or runs_dir())
    sub = Path(rec["submission"])
    return Member(
        name=f"b{i:04d}",
        path=sub,
        experiment=i,
        config_hash=rec["config_hash"],
        evaluation=Path(rec["record"]),
        run_dirs=[root / r["run_key"] for r in rec["runs"]],
        fold_score=rec.get("mean_fold_score"),
        oof_score=rec.get("oof_score"),
        oof=node.oof,
        sha256=sha256_file(sub),
    )
