"""`molremote ensemble`: experiments and files as members, weights (given or fitted on out-of-fold
predictions), the blend's OOF metric next to each member's, and a record that names every member.

Members:
  - an experiment: its evaluated test submission (runs/<exp>/evaluation-<hash>/submission.csv, evaluated on
    the spot when missing) and its runs' validation predictions as out-of-fold predictions;
  - a file (`-i`): a submission made elsewhere; it has no OOF predictions, so `--weights auto` refuses it.
Averaging, alignment by id, the heatmap and the base record are molremote.results.averaging's; this module resolves
members, fits weights and adds the tracing (experiment, config hash, evaluation record) to ensemble.json.
Imports no torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SubmissionError
from ..fsutil import write_json
from ..runs import key_of_dir
from ..tasks import task_results
from ..tasks.base import OOF
from .members import Member
from .submission_files import sha256_file

ENSEMBLES_DIR = "ensembles"  # under the runs folder


def infer_task(files: Sequence[Path | str]) -> str:
    """The one registered task whose submission format every file's header fits (`molremote ensemble -i`
    without -e or --task). A SubmissionError says which tasks fit when several do, and what each expects when
    none does."""
    from ..tasks import all_task_results
    from .submission_files import _few, read_header

    if not files:
        raise SubmissionError("no member files to tell the task from")
    headers = [(Path(f), read_header(Path(f))) for f in files]
    infos = all_task_results()
    fits = [i.name for i in infos if all(i.accepts_header(h) for _, h in headers)]
    if len(fits) == 1:
        return fits[0]
    if fits:
        raise SubmissionError(
            f"the header of {', '.join(str(p) for p, _ in headers)} fits the submission format of "
            f"several tasks ({', '.join(fits)}): name one with --task"
        )
    expected = "; ".join(
        f"{i.name}: {_few(i.submission_spec().expected_columns() or [i.submission_spec().id_col, '...'])}"
        for i in infos
    )
    got = "; ".join(f"{p}: {_few(h)}" for p, h in headers)
    raise SubmissionError(
        f"no task's submission format fits the member file header(s) ({got}); the tasks expect "
        f"{expected}. Fix the files, or name the task with --task"
    )


def parse_weights(text: str | None, n: int) -> list[float] | str | None:
    """None (uniform), "auto", or n non-negative floats from "0.5,0.3,0.2" (scaled to sum 1 later)."""
    if text is None or text.strip() == "":
        return None
    if text.strip().lower() == "auto":
        return "auto"
    try:
        w = [float(x) for x in text.split(",")]
    except ValueError:
        raise SubmissionError(
            f"--weights {text!r}: expected comma-separated numbers (e.g. 0.5,0.3,0.2) or 'auto'"
        ) from None
    if len(w) != n:
        raise SubmissionError(f"--weights {text!r}: {len(w)} weight(s) for {n} member(s)")
    if any(not np.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
        raise SubmissionError(f"--weights {text!r}: weights must be finite, >= 0 and not all 0")
    return w


def aligned_oof(members: Sequence[Member], task: str) -> tuple[OOF, list[np.ndarray]] | str:
    """(the first member's OOF, every member's OOF predictions aligned to it) or why there are none."""
    note = task_results(task).oof_note
    if note:
        return note
    missing = [m.name for m in members if m.oof is None]
    if missing:
        return f"member(s) {', '.join(missing)} have no out-of-fold predictions (files given with -i)"
    ref = members[0].oof
    assert ref is not None
    preds = []
    for m in members:
        o = m.oof
        assert o is not None
        if not np.array_equal(o.ids, ref.ids):
            return (
                f"{m.name}'s out-of-fold rows differ from {members[0].name}'s ({len(o.ids)} vs {len(ref.ids)} "
                "rows): the experiments used other folds or fold settings"
            )
        if not np.array_equal(o.y, ref.y):
            return f"{m.name}'s out-of-fold labels differ from {members[0].name}'s: not the same data"
        preds.append(o.pred)
    return ref, preds


def ensemble_hash(
    members: Sequence[Member], weights: Sequence[float] | np.ndarray, method: str, normalise: str | None
) -> str:
    payload = json.dumps(
        {
            "members": [m.sha256 for m in members],
            "weights": [round(float(w), 6) for w in weights],
            "method": method,
            "normalise": normalise,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def default_out_dir(members: Sequence[Member], ens_hash: str, runs_root: Path | None = None) -> Path:
    from ..project import runs_dir

    label = "+".join(m.name for m in members)
    if len(label) > 80:  # keep folder names short; the record lists every member anyway
        label = label[:80].rstrip("+") + f"+{len(members)}m"
    return Path(runs_root or runs_dir()) / ENSEMBLES_DIR / f"{label}-{ens_hash[:8]}"


@dataclass
class BlendResult:
    out_dir: Path
    submission: Path
    record: Path
    heatmap: Path | None
    task: str
    method: str
    normalise: str | None
    weights: list[float]
    ens_hash: str
    table: list[dict[str, Any]]  # per member + "ensemble": name, kind, weight, fold_score, oof_score
    oof_score: float | None
    oof_note: str | None
    fit: dict[str, Any] | None
    reused: bool = False


def blend(
    members: Sequence[Member],
    task: str,
    *,
    weights: Sequence[float] | str | None = None,
    method: str | None = None,
    out: Path | str | None = None,
    overwrite: bool = False,
    runs_root: Path | None = None,
) -> BlendResult:
    """Average the members' test submissions by id into out (a folder, or a .csv file path; default
    runs/ensembles/<members>-<hash>/), with submission.csv, correlation.png and ensemble.json."""
    from .averaging import build_ensemble, combine, normalise_weights, unique_names

    if not members:
        raise SubmissionError("no ensemble members: give experiments with -e and/or files with -i")
    for m, n in zip(members, unique_names([m.name for m in members])):
        m.name = n
    info = task_results(task)
    method = method or info.ensemble.method
    normalise, axis = info.ensemble.normalise, info.ensemble.axis
    oof = aligned_oof(members, task)
    oof_note = oof if isinstance(oof, str) else None
    oof_pair = None if isinstance(oof, str) else oof
    fit_info = None
    if weights == "auto":
        if oof_pair is None:
            raise SubmissionError(
                f"--weights auto needs out-of-fold predictions for every member: {oof_note}. "
                "Give weights explicitly (--weights 0.5,0.5) or leave them uniform"
            )
        from .averaging import fit_weights

        ref, preds = oof_pair
        f = fit_weights(preds, ref.y, ref.score, info.greater_is_better, method=method, normalise=normalise, axis=axis)
        w = f.weights
        fit_info = f.record(len(ref.y))
    else:
        w = normalise_weights(weights, len(members))  # type: ignore[arg-type]
    w = np.asarray(w, dtype=np.float64)
    table = [
        {
            "name": m.name,
            "kind": m.kind,
            "experiment": m.experiment,
            "weight": float(wi),
            "fold_score": m.fold_score,
            "oof_score": None,
        }
        for m, wi in zip(members, w)
    ]
    ens_oof = None
    if oof_pair is not None:
        ref, preds = oof_pair
        for row, p in zip(table, preds):
            row["oof_score"] = float(ref.score(ref.y, p))
        ens_oof = float(ref.score(ref.y, combine(preds, w, method, normalise, axis)))
    table.append(
        {
            "name": "ensemble",
            "kind": "ensemble",
            "experiment": None,
            "weight": float(w.sum()),
            "fold_score": None,
            "oof_score": ens_oof,
        }
    )
    h = ensemble_hash(members, w, method, normalise)
    if out is None:
        out_dir, filename = default_out_dir(members, h, runs_root), "submission.csv"
    else:
        out = Path(out)
        out_dir, filename = (out.parent, out.name) if out.suffix.lower() == ".csv" else (out, "submission.csv")
    record = out_dir / "ensemble.json"
    sub = out_dir / filename
    old = json.loads(record.read_text()) if record.is_file() else None
    common = dict(
        out_dir=out_dir,
        submission=sub,
        record=record,
        task=task,
        method=method,
        normalise=normalise,
        weights=w.tolist(),
        ens_hash=h,
        table=table,
        oof_score=ens_oof,
        oof_note=oof_note,
        fit=fit_info,
    )
    if (
        old is not None
        and old.get("ensemble_hash") == h
        and sub.is_file()
        and not overwrite
        and sha256_file(sub) == (old.get("submission") or {}).get("sha256")
    ):
        png = out_dir / "correlation.png"
        return BlendResult(heatmap=png if png.is_file() else None, reused=True, **common)
    metrics = {
        "metric": info.metric_name,
        "oof_score": ens_oof,
        "members": {r["name"]: {"oof_score": r["oof_score"], "fold_score": r["fold_score"]} for r in table[:-1]},
    }
    if oof_note:
        metrics["oof_note"] = oof_note
    res = build_ensemble(
        [(m.name, m.path) for m in members],
        out_dir,
        weights=w,
        method=method,
        task=task,
        spec=info.submission_spec(),
        metrics=metrics,
        overwrite=overwrite,
        filename=filename,
    )
    rec = json.loads(res.record.read_text())
    rec["ensemble_hash"] = h
    for d_, m in zip(rec["members"], members):
        d_["kind"] = m.kind
        if m.experiment is not None:
            d_.update(
                experiment=m.experiment,
                config_hash=m.config_hash,
                evaluation=str(m.evaluation),
                run_keys=[key_of_dir(p) for p in m.run_dirs],
            )
    rec["experiments"] = [m.experiment for m in members if m.experiment is not None]
    if fit_info:
        rec["weights_fit"] = fit_info
    if old is not None and old.get("kaggle_submissions"):
        rec["kaggle_submissions"] = old["kaggle_submissions"]  # what was sent stays on record
    write_json(res.record, rec)
    return BlendResult(heatmap=res.heatmap, **common)
