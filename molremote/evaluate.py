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

from .errors import DataError, MolremoteError, SubmissionError
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
    from .runs import read_json, read_manifest

    path = Path(path)
    man = read_manifest(path / "manifest.json")  # ManifestError names a damaged one
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

    def oof(self, valids: Sequence[Path]) -> "OOF | None":
        """All folds' validation predictions as one id-sorted vector with labels and the metric, for fitting
        blend weights; None where pooling folds is not meaningful."""
        return None


@dataclass
class OOF:
    """Out-of-fold predictions of one experiment, sorted by id: score(y, pred) is the task metric on them."""

    ids: np.ndarray
    y: np.ndarray
    pred: np.ndarray
    score: Any  # Callable[[np.ndarray, np.ndarray], float]
    source: str = ""


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

    def oof(self, valids: Sequence[Path]) -> OOF:
        import pyarrow as pa

        from .tasks.belka_metric import belka_ap

        t = pa.concat_tables([self._valid(v).select(list(self.VALID_COLS)) for v in valids])
        ids = t["id"].to_numpy()
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        if len(ids) > 1 and (ids[1:] == ids[:-1]).any():
            raise DataError(f"validation row ids occur in more than one fold of {', '.join(map(str, valids))}")
        protein = t["protein_name"].to_numpy(zero_copy_only=False)[order].astype(str)
        group = t["split_group"].to_numpy(zero_copy_only=False)[order].astype(str)
        # belka_ap's cells, found once: weight fitting scores the blend ~100-200 times, and finding the cells
        # (string compares over every row) costs as much as the six average precisions themselves.
        cells = [c for pn in np.unique(protein) for g in np.unique(group)
                 if len(c := np.flatnonzero((protein == pn) & (group == g)))]

        def score(y: np.ndarray, pred: np.ndarray) -> float:
            import warnings

            from sklearn.metrics import average_precision_score

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a cell without positives scores 0.0, as in belka_ap
                return float(np.mean([average_precision_score(y[c], pred[c]) for c in cells])) if cells \
                    else belka_ap(y, pred, protein, group, what="out-of-fold predictions")

        return OOF(ids, t["binds_true"].to_numpy()[order], t["binds"].to_numpy()[order].astype(np.float64), score,
                   source=str(Path(valids[0]).parent.parent.parent) if valids else "")

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


# ---------------------------------------------------------------------------------------------- experiments
# What `molremote evaluate -e N` and `molremote ensemble -e N` need: the experiment's run folders for its
# CURRENT config hash (local, else pulled from the store), and an evaluation folder beside them.
PULL_SUBSETS = ["predictions", "metrics"]  # evaluating needs no checkpoints


def configured_store():  # -> Store | None
    """The store from the settings (molremote.toml / MOLREMOTE_STORE), else the default local store when it
    exists, else None (nothing to pull from)."""
    from .store import configured_store as _configured

    return _configured(default_if_present=True)


def _usable(path: Path) -> tuple[bool, str]:
    from .errors import ManifestError
    from .runs import read_manifest

    try:
        m = read_manifest(path / "manifest.json")
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


def runs_for_experiment(exp: Any, folds: Sequence[int] | None = None, *, pull: bool = True, store: Any = None,
                        runs_root: Path | None = None) -> list[Path]:
    """The complete run folder of each fold (default: exp.fold_list()) for exp's current config hash.

    A fold missing or unfinished locally is pulled (predictions + metrics only) from `store` (default: the
    configured one) when the store holds a complete run of it. Raises DataError naming every fold that has no
    complete run, and why, with the command that makes it."""
    from .project import runs_dir
    from .runs import run_path

    root = Path(runs_root or runs_dir())
    folds = list(folds) if folds is not None else exp.fold_list()
    for f in folds:
        if not 0 <= f < exp.folds.n_folds:
            raise DataError(f"fold {f} out of range 0..{exp.folds.n_folds - 1} for experiment {exp.name}")
    found: dict[int, Path] = {}
    why: dict[int, str] = {}
    for f in folds:
        p = run_path(exp, f, root)
        ok, reason = _usable(p)
        if ok:
            found[f] = p
        else:
            why[f] = reason
    missing = [f for f in folds if f not in found]
    if missing and pull:
        from .store.ops import pull_run, select_runs

        st = store if store is not None else configured_store()
        for f in missing:
            if st is None:
                why[f] += "; no store configured to pull from"
                continue
            try:
                rows = select_runs(exp.id, fold=f, config_hash=exp.config_hash, store=st)
                done = [r for r in rows if (r.get("manifest") or {}).get("status") == "complete"]
                if not done:
                    why[f] += f"; no complete run of it in store {st.url}" + (
                        f" (stored status {rows[0]['manifest'].get('status')!r})" if rows else "")
                    continue
                p = pull_run(done[0]["key"], store=st, only=PULL_SUBSETS, runs_root=root)
            except MolremoteError as e:
                why[f] += f"; pulling from {getattr(st, 'url', st)} failed: {e}"
                continue
            ok, reason = _usable(p)
            if ok:
                found[f] = p
            else:
                why[f] += f"; pulled, but {reason}"
    missing = [f for f in folds if f not in found]
    if missing:
        others = sorted({p.parent.name for p in (root / exp.name).glob("fold*-*/manifest.json")
                         if not p.parent.name.endswith(exp.config_hash)})
        hint = (f" Runs of other configurations exist ({', '.join(others[:4])}): the experiment changed since; "
                "its current config hash is " + exp.config_hash + ".") if others else ""
        lines = "; ".join(f"fold {f}: {why[f]}" for f in missing)
        cmd = f"molremote train -e {exp.id} " + (f"--fold {missing[0]}" if len(missing) == 1 else "--all-folds")
        raise DataError(f"experiment {exp.name} (config {exp.config_hash}) has no complete run for fold(s) "
                        f"{', '.join(map(str, missing))}: {lines}. Train (or resume) with `{cmd}`, or pull finished "
                        f"runs from the store.{hint}")
    return [found[f] for f in folds]


def evaluation_dir(exp: Any, folds: Sequence[int] | None = None, runs_root: Path | None = None) -> Path:
    """`runs/<NNNN_slug>/evaluation-<hash>/` (`...-f013` when evaluating other folds than the experiment's)."""
    from .project import runs_dir

    folds = sorted(folds) if folds is not None else None
    tag = "" if folds is None or folds == sorted(exp.fold_list()) else "-f" + "".join(map(str, folds))
    return Path(runs_root or runs_dir()) / exp.name / f"evaluation-{exp.config_hash}{tag}"


def _fingerprint(runs: Sequence[dict[str, Any]]) -> list[tuple]:
    return sorted((r.get("run_key"), r.get("run_uid"), (r.get("test_predictions") or {}).get("sha256"))
                  for r in runs)


def evaluate_experiment(exp: Any, folds: Sequence[int] | None = None, *, overwrite: bool = False,
                        pull: bool = True, store: Any = None, runs_root: Path | None = None,
                        allow_incomplete: bool = False) -> tuple[dict[str, Any], bool]:
    """Evaluate an experiment into evaluation_dir(exp): (the evaluation.json record, reused).

    An existing evaluation of the very same runs (run keys, run uids, test-prediction sha256) is reused as it
    is; one of other runs is refused unless `overwrite` (the record's Kaggle submissions are carried over)."""
    if allow_incomplete:  # take whatever folders exist; load_runs says what is wrong with each
        from .project import runs_dir
        from .runs import run_path

        root = Path(runs_root or runs_dir())
        paths = [run_path(exp, f, root) for f in (folds if folds is not None else exp.fold_list())]
    else:
        paths = runs_for_experiment(exp, folds, pull=pull, store=store, runs_root=runs_root)
    out = evaluation_dir(exp, folds, runs_root)
    old = read_evaluation(out) if (out / EVALUATION_NAME).is_file() else None
    if old is not None and old.get("submission") and Path(old["submission"]).is_file():
        current = [{"run_key": r.key, "run_uid": r.manifest.get("run_uid"),
                    "test_predictions": {"sha256": sha256_file(r.prediction("test"))}}
                   for r in load_runs(paths, allow_incomplete=allow_incomplete)]
        same = _fingerprint(current) == _fingerprint(old.get("runs", [])) \
            and sha256_file(Path(old["submission"])) == old.get("submission_sha256")
        if same and not overwrite:
            return old, True
        if not overwrite:
            raise SubmissionError(f"{out}: holds an evaluation of other runs (or its submission changed); pass "
                                  "--overwrite to replace it")
    ev = evaluate_runs(paths, out_dir=out, overwrite=overwrite, allow_incomplete=allow_incomplete)
    rec = read_evaluation(out)
    extra: dict[str, Any] = {"experiment_name": exp.name, "config_hash": exp.config_hash,
                             "folds": sorted(ev.fold_scores)}
    baselines = [(r.get("fold"), load_run(p).manifest.get("baseline")) for r, p in zip(ev.runs, paths)]
    if any(b is not None for _, b in baselines):
        extra["baseline"] = {str(f): b for f, b in baselines if b is not None}
    if old is not None and old.get("kaggle_submissions"):
        extra["kaggle_submissions"] = old["kaggle_submissions"]  # what was sent stays on record
    from .ensemble import _write_json_atomic

    rec.update(extra)
    _write_json_atomic(out / EVALUATION_NAME, rec)
    return rec, False
