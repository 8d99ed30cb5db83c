"""Evaluate one experiment's fold runs without torch.

Given run folders (local or pulled) of one experiment, each with `predictions/valid.parquet` and
`predictions/test.parquet` (written by the task's `write_predictions`); an experiment listing several
`training.seeds` has one run per (fold, seed), and a fold's seeds are averaged first (`TaskResults.average_seeds`,
written under `<evaluation folder>/seeds/fold<k>/`), then the folds as below:
  - the task's metric per fold, and on all folds' validation rows together (out-of-fold, where meaningful);
  - test predictions averaged across folds BY ID (molremote.results.averaging) into the competition's submission,
    checked against the task's format before it is written (atomically);
  - `evaluation.json` beside it: scores, runs (run keys, config hashes, file sha256), code commit.

Metrics, the submission format and the averaging come from the task's torch-free side
(`molremote.tasks.task_results(name)`, a `TaskResults`); importing this module imports neither torch nor the
tasks' torch-side code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError, MolremoteError, SubmissionError
from ..fsutil import write_json
from ..runs import MANIFEST, RunInfo, load_run, other_config_runs
from ..tasks import task_results
from ..tasks.base import TestMember
from .submission_files import sha256_file

if TYPE_CHECKING:  # pragma: no cover
    from ..experiments import Experiment
    from ..store.base import Store

EVALUATION_NAME = "evaluation.json"


# ---------------------------------------------------------------------------------------------- runs
def load_runs(paths: Sequence[Path | str], *, allow_incomplete: bool = False) -> list[RunInfo]:
    """Run folders of ONE experiment, one per (fold, seed), sorted by fold then seed. Refuses mixed experiments
    or tasks, two runs of the same fold and seed, and (unless allow_incomplete) runs that did not complete."""
    if not paths:
        raise DataError("no run folders to evaluate")
    runs = [load_run(p) for p in paths]
    first = runs[0]
    for r in runs[1:]:
        if r.manifest.get("experiment") != first.manifest.get("experiment"):
            raise DataError(
                f"{r.path}: experiment {r.manifest.get('experiment')!r}, but {first.path} is experiment "
                f"{first.manifest.get('experiment')!r}: evaluate one experiment at a time "
                "(average experiments with `molremote ensemble`)"
            )
        if r.task != first.task:
            raise DataError(f"{r.path}: task {r.task!r}, but {first.path} has task {first.task!r}")
    by_fold: dict[tuple[int, int], RunInfo] = {}
    for r in runs:
        unit = (r.fold, -1 if r.seed is None else r.seed)
        if unit in by_fold:
            what = f"fold {r.fold}" + (f" seed {r.seed}" if r.seed is not None else "")
            raise DataError(f"two runs of {what}: {by_fold[unit].path} and {r.path}; keep one")
        by_fold[unit] = r
        if not allow_incomplete and r.manifest.get("status") != "complete":
            raise DataError(
                f"{r.path}: run status is {r.manifest.get('status')!r}, not 'complete' (resume it with "
                "`molremote train`, or pass --allow-incomplete to evaluate its last predictions)"
            )
    return [by_fold[k] for k in sorted(by_fold)]


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
    # {fold: {seed: score}} when a fold has several seeds (fold_scores then scores their average)
    seed_scores: dict[int, dict[int, float]] = field(default_factory=dict)
    submission: Path | None = None
    record: Path | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["submission"] = str(self.submission) if self.submission else None
        d["record"] = str(self.record) if self.record else None
        d["fold_scores"] = {str(k): v for k, v in self.fold_scores.items()}
        d["n_valid"] = {str(k): v for k, v in self.n_valid.items()}
        d["seed_scores"] = {str(k): {str(s): v for s, v in d2.items()} for k, d2 in self.seed_scores.items()}
        return d


def _fold_files(runs: Sequence[RunInfo], split: str, ev: Any, seeds_dir: Path) -> dict[int, Path]:
    """{fold: its `split` prediction file}: the run's own, or its seeds' average written under `seeds_dir`."""
    by_fold: dict[int, list[RunInfo]] = {}
    for r in runs:
        by_fold.setdefault(r.fold, []).append(r)
    out = {}
    for f, rs in sorted(by_fold.items()):
        files = [r.prediction(split) for r in rs]
        out[f] = files[0] if len(files) == 1 else ev.average_seeds(files, seeds_dir / f"fold{f}" / f"{split}.parquet")
    return out


def evaluate_runs(
    run_dirs: Sequence[Path | str],
    *,
    out_dir: Path | str | None = None,
    submission: bool = True,
    overwrite: bool = False,
    allow_incomplete: bool = False,
    submission_name: str | None = None,
) -> Evaluation:
    """Score each fold's validation predictions, the out-of-fold set, and (with out_dir and submission=True)
    write `out_dir/submission.csv` (test predictions averaged over folds by id, format-checked first) and
    `out_dir/evaluation.json`."""
    import tempfile

    runs = load_runs(run_dirs, allow_incomplete=allow_incomplete)
    with tempfile.TemporaryDirectory(prefix="molremote-seeds-") as tmp:
        return _evaluate(runs, out_dir, submission, overwrite, submission_name, Path(tmp))


def _evaluate(
    runs: list[RunInfo],
    out_dir: Path | str | None,
    submission: bool,
    overwrite: bool,
    submission_name: str | None,
    tmp: Path,
) -> Evaluation:
    ev = task_results(runs[0].task)
    several = len({r.fold for r in runs}) < len(runs)  # some fold has several seeds
    seeds_dir = (Path(out_dir) if out_dir is not None else tmp) / "seeds"
    valid = _fold_files(runs, "valid", ev, seeds_dir)
    fold_scores, n_valid = {}, {}
    for f, p in valid.items():
        fold_scores[f], n_valid[f] = ev.fold_score(p)
    seed_scores: dict[int, dict[int, float]] = {}
    if several:
        for r in runs:
            if r.seed is not None:
                seed_scores.setdefault(r.fold, {})[r.seed] = ev.fold_score(r.prediction("valid"))[0]
    oof = ev.oof_score(list(valid.values())) if len(valid) > 1 else fold_scores[runs[0].fold]
    details = {str(f): d for f, p in valid.items() if (d := ev.fold_details(p)) is not None}
    result = Evaluation(
        experiment=runs[0].manifest.get("experiment"),
        task=ev.name,
        metric=ev.metric_name,
        greater_is_better=ev.greater_is_better,
        fold_scores=fold_scores,
        n_valid=n_valid,
        mean_fold_score=float(np.mean(list(fold_scores.values()))),
        oof_score=oof,
        runs=[
            {
                "run_key": r.key,
                "fold": r.fold,
                **({"seed": r.seed} if r.seed is not None else {}),
                "config_hash": r.manifest.get("config_hash"),
                "run_uid": r.manifest.get("run_uid"),
                "status": r.manifest.get("status"),
                "code": r.manifest.get("code"),
            }
            for r in runs
        ],
        seed_scores=seed_scores,
    )
    if details:
        result.notes["fold_details"] = details
    if out_dir is None or not submission:
        return result
    out_dir = Path(out_dir)
    sub_path = out_dir / (submission_name or ev.submission_filename)  # submission.csv unless the task says
    if sub_path.exists() and not overwrite:
        raise SubmissionError(f"{sub_path}: already exists (pass overwrite=True / --overwrite to replace it)")
    tests = _fold_files(runs, "test", ev, seeds_dir)
    members = (
        [TestMember(f"{runs[0].key.rsplit('/', 1)[0]}/fold{f}-seeds", p) for f, p in tests.items()]
        if several
        else [TestMember(r.key, r.prediction("test")) for r in runs]
    )
    pred, spec, notes = ev.test_submission(members)
    ev.write_submission_file(pred, sub_path, spec, overwrite=overwrite)
    for r, d in zip(runs, result.runs):
        p = r.prediction("test")
        d["test_predictions"] = {"path": str(p.resolve()), "sha256": sha256_file(p)}
    from .averaging import code_version

    result.submission, result.notes = sub_path, {**notes, "rows": len(pred), **result.notes}
    result.record = out_dir / EVALUATION_NAME
    write_json(result.record, {**result.to_dict(), "code": code_version(), "submission_sha256": sha256_file(sub_path)})
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


# ---------------------------------------------------------------------------------------------- experiments
# What `molremote evaluate -e N` and `molremote ensemble -e N` need: the experiment's run folders for its
# CURRENT config hash (local, else pulled from the store), and an evaluation folder beside them.
PULL_SUBSETS = ["predictions", "metrics"]  # evaluating needs no checkpoints


def configured_store():  # -> Store | None
    """The store from the settings (molremote.toml / MOLREMOTE_STORE), else the default local store when it
    exists, else None (nothing to pull from)."""
    from ..store import configured_store as _configured

    return _configured(default_if_present=True)


def _usable(path: Path) -> tuple[bool, str]:
    from ..errors import ManifestError
    from ..runs import read_manifest

    try:
        m = read_manifest(path / MANIFEST)
    except ManifestError as e:
        return False, str(e)
    if m is None:
        return False, f"no run folder {path}"
    if m.get("status") != "complete":
        return False, f"{path}: status {m.get('status')!r}, not 'complete'"
    missing = [s for s in ("valid", "test") if not (path / "predictions" / f"{s}.parquet").is_file()]
    if missing:
        return False, f"{path}: no predictions/{' or '.join(f'{s}.parquet' for s in missing)}"
    return True, ""


def runs_for_experiment(
    exp: Experiment,
    folds: Sequence[int] | None = None,
    *,
    pull: bool = True,
    store: Store | None = None,
    runs_root: Path | None = None,
) -> list[Path]:
    """The complete run folder of each fold (default: exp.fold_list()) and each of its seeds (an experiment
    listing several `training.seeds` has one run per (fold, seed)) for exp's current config hash.

    A run missing or unfinished locally is pulled (predictions + metrics only) from `store` (default: the
    configured one) when the store holds a complete run of it. Raises DataError naming every run that is not
    complete, and why, with the command that makes it."""
    from ..project import runs_dir
    from ..runs import parse_key_seed, run_path

    root = Path(runs_root or runs_dir())
    folds = list(folds) if folds is not None else exp.fold_list()
    for f in folds:
        if not 0 <= f < exp.folds.n_folds:
            raise DataError(f"fold {f} out of range 0..{exp.folds.n_folds - 1} for experiment {exp.name}")
    units = [(f, s) for f in folds for s in exp.seed_list()]
    found: dict[tuple[int, int | None], Path] = {}
    why: dict[tuple[int, int | None], str] = {}
    for u in units:
        p = run_path(exp.with_seed(u[1]), u[0], root)
        ok, reason = _usable(p)
        if ok:
            found[u] = p
        else:
            why[u] = reason
    missing = [u for u in units if u not in found]
    if missing and pull:
        from ..store.ops import pull_run, select_runs

        st = store if store is not None else configured_store()
        for u in missing:
            f, seed = u
            if st is None:
                why[u] += "; no store configured to pull from"
                continue
            try:
                rows = select_runs(exp.id, fold=f, config_hash=exp.config_hash, store=st)
                rows = [r for r in rows if (parse_key_seed(r["key"]) or ("", 0, None, ""))[2] == seed]
                done = [r for r in rows if (r.get("manifest") or {}).get("status") == "complete"]
                if not done:
                    why[u] += f"; no complete run of it in store {st.url}" + (
                        f" (stored status {rows[0]['manifest'].get('status')!r})" if rows else ""
                    )
                    continue
                p = pull_run(done[0]["key"], store=st, only=PULL_SUBSETS, runs_root=root)
            except MolremoteError as e:
                why[u] += f"; pulling from {getattr(st, 'url', st)} failed: {e}"
                continue
            ok, reason = _usable(p)
            if ok:
                found[u] = p
            else:
                why[u] += f"; pulled, but {reason}"
    missing = [u for u in units if u not in found]
    if missing:
        others = other_config_runs(exp, root)
        hint = (
            (
                f" Runs of other configurations exist ({', '.join(others[:4])}): the experiment changed since; "
                "its current config hash is " + exp.config_hash + "."
            )
            if others
            else ""
        )

        def name(u: tuple[int, int | None]) -> str:
            return f"fold {u[0]}" + (f" seed {u[1]}" if u[1] is not None else "")

        lines = "; ".join(f"{name(u)}: {why[u]}" for u in missing)
        missing_folds = sorted({f for f, _ in missing})
        cmd = f"molremote train -e {exp.id} " + (
            f"--fold {missing_folds[0]}" if len(missing_folds) == 1 else "--all-folds"
        )
        if len(missing) == 1 and missing[0][1] is not None:
            cmd += f" --seed {missing[0][1]}"
        what = "fold(s) " + ", ".join(map(str, missing_folds)) if exp.training.seeds is None else "runs"
        raise DataError(
            f"experiment {exp.name} (config {exp.config_hash}) has no complete run for {what}"
            f"{' ' + ', '.join(name(u) for u in missing) if exp.training.seeds is not None else ''}: {lines}. "
            f"Train (or resume) with `{cmd}`, or pull finished runs from the store.{hint}"
        )
    return [found[u] for u in units]


def evaluation_dir(exp: Experiment, folds: Sequence[int] | None = None, runs_root: Path | None = None) -> Path:
    """`runs/<NNNN_slug>/evaluation-<hash>/` (`...-f013` when evaluating other folds than the experiment's)."""
    from ..project import runs_dir

    folds = sorted(folds) if folds is not None else None
    tag = "" if folds is None or folds == sorted(exp.fold_list()) else "-f" + "".join(map(str, folds))
    return Path(runs_root or runs_dir()) / exp.name / f"evaluation-{exp.config_hash}{tag}"


def _fingerprint(runs: Sequence[dict[str, Any]]) -> list[tuple]:
    return sorted((r.get("run_key"), r.get("run_uid"), (r.get("test_predictions") or {}).get("sha256")) for r in runs)


def evaluate_experiment(
    exp: Experiment,
    folds: Sequence[int] | None = None,
    *,
    overwrite: bool = False,
    pull: bool = True,
    store: Store | None = None,
    runs_root: Path | None = None,
    allow_incomplete: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Evaluate an experiment into evaluation_dir(exp): (the evaluation.json record, reused).

    An existing evaluation of the very same runs (run keys, run uids, test-prediction sha256) is reused as it
    is; one of other runs is refused unless `overwrite` (the record's Kaggle submissions are carried over)."""
    if allow_incomplete:  # take whatever folders exist; load_runs says what is wrong with each
        from ..project import runs_dir
        from ..runs import run_path

        root = Path(runs_root or runs_dir())
        paths = [
            run_path(exp.with_seed(s), f, root)
            for f in (folds if folds is not None else exp.fold_list())
            for s in exp.seed_list()
        ]
    else:
        paths = runs_for_experiment(exp, folds, pull=pull, store=store, runs_root=runs_root)
    out = evaluation_dir(exp, folds, runs_root)
    old = read_evaluation(out) if (out / EVALUATION_NAME).is_file() else None
    if old is not None and old.get("submission") and Path(old["submission"]).is_file():
        current = [
            {
                "run_key": r.key,
                "run_uid": r.manifest.get("run_uid"),
                "test_predictions": {"sha256": sha256_file(r.prediction("test"))},
            }
            for r in load_runs(paths, allow_incomplete=allow_incomplete)
        ]
        same = _fingerprint(current) == _fingerprint(old.get("runs", [])) and sha256_file(
            Path(old["submission"])
        ) == old.get("submission_sha256")
        if same and not overwrite:
            return old, True
        if not overwrite:
            raise SubmissionError(
                f"{out}: holds an evaluation of other runs (or its submission changed); pass --overwrite to replace it"
            )
    ev = evaluate_runs(paths, out_dir=out, overwrite=overwrite, allow_incomplete=allow_incomplete)
    rec = read_evaluation(out)
    extra: dict[str, Any] = {
        "experiment_name": exp.name,
        "config_hash": exp.config_hash,
        "folds": sorted(ev.fold_scores),
    }
    baselines = [(r.get("fold"), load_run(p).manifest.get("baseline")) for r, p in zip(ev.runs, paths)]
    if any(b is not None for _, b in baselines):
        extra["baseline"] = {str(f): b for f, b in baselines if b is not None}
    if old is not None and old.get("kaggle_submissions"):
        extra["kaggle_submissions"] = old["kaggle_submissions"]  # what was sent stays on record
    rec.update(extra)
    write_json(out / EVALUATION_NAME, rec)
    return rec, False
