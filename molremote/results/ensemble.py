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

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import SubmissionError
from .evaluate import OOF, evaluator_for
from .members import Member
from .submission_files import sha256_file, spec_for_task

ENSEMBLES_DIR = "ensembles"  # under the runs folder


def parse_weights(text: str | None, n: int) -> list[float] | str | None:
    """None (uniform), "auto", or n non-negative floats from "0.5,0.3,0.2" (scaled to sum 1 later)."""
    if text is None or text.strip() == "":
        return None
    if text.strip().lower() == "auto":
        return "auto"
    try:
        w = [float(x) for x in text.split(",")]
    except ValueError:
        raise SubmissionError(f"--weights {text!r}: expected comma-separated numbers (e.g. 0.5,0.3,0.2) or 'auto'") \
            from None
    if len(w) != n:
        raise SubmissionError(f"--weights {text!r}: {len(w)} weight(s) for {n} member(s)")
    if any(not np.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
        raise SubmissionError(f"--weights {text!r}: weights must be finite, >= 0 and not all 0")
    return w


def aligned_oof(members: Sequence[Member], task: str) -> tuple[OOF, list[np.ndarray]] | str:
    """(the first member's OOF, every member's OOF predictions aligned to it) or why there are none."""
    if task != "belka":
        return (f"task {task!r} has no pooled out-of-fold score (each fold's model ranks only within its own "
                "validation set)")
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
            return (f"{m.name}'s out-of-fold rows differ from {members[0].name}'s ({len(o.ids)} vs {len(ref.ids)} "
                    "rows): the experiments used other folds or fold settings")
        if not np.array_equal(o.y, ref.y):
            return f"{m.name}'s out-of-fold labels differ from {members[0].name}'s: not the same data"
        preds.append(o.pred)
    return ref, preds


def ensemble_hash(members: Sequence[Member], weights: Sequence[float], method: str, normalise: str | None) -> str:
    payload = json.dumps({"members": [m.sha256 for m in members], "weights": [round(float(w), 6) for w in weights],
                          "method": method, "normalise": normalise}, sort_keys=True)
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


def blend(members: Sequence[Member], task: str, *, weights: Sequence[float] | str | None = None,
          method: str | None = None, out: Path | str | None = None, overwrite: bool = False,
          runs_root: Path | None = None) -> BlendResult:
    """Average the members' test submissions by id into out (a folder, or a .csv file path; default
    runs/ensembles/<members>-<hash>/), with submission.csv, correlation.png and ensemble.json."""
    from .averaging import TASK_DEFAULTS, _unique_names, _write_json_atomic, build_ensemble, combine, normalise_weights

    if not members:
        raise SubmissionError("no ensemble members: give experiments with -e and/or files with -i")
    for m, n in zip(members, _unique_names([m.name for m in members])):
        m.name = n
    d = TASK_DEFAULTS.get(task, {"method": "mean", "normalise": None, "axis": "column"})
    method = method or d["method"]
    normalise, axis = d["normalise"], d["axis"]
    oof = aligned_oof(members, task)
    oof_note = oof if isinstance(oof, str) else None
    fit_info = None
    if weights == "auto":
        if oof_note:
            raise SubmissionError(f"--weights auto needs out-of-fold predictions for every member: {oof_note}. "
                                  "Give weights explicitly (--weights 0.5,0.5) or leave them uniform")
        from .averaging import fit_weights

        ref, preds = oof  # type: ignore[misc]
        f = fit_weights(preds, ref.y, ref.score, True, method=method, normalise=normalise, axis=axis)
        w = f.weights
        fit_info = {"on": "out-of-fold predictions", "rows": int(len(ref.y)), "score": f.score,
                    "uniform_score": f.uniform_score, "success": f.success, "message": f.message, "n_evals": f.n_evals}
    else:
        w = normalise_weights(weights, len(members))  # type: ignore[arg-type]
    w = np.asarray(w, dtype=np.float64)
    table = [{"name": m.name, "kind": m.kind, "experiment": m.experiment, "weight": float(wi),
              "fold_score": m.fold_score, "oof_score": None} for m, wi in zip(members, w)]
    ens_oof = None
    if not oof_note:
        ref, preds = oof  # type: ignore[misc]
        for row, p in zip(table, preds):
            row["oof_score"] = float(ref.score(ref.y, p))
        ens_oof = float(ref.score(ref.y, combine(preds, w, method, normalise, axis)))
    table.append({"name": "ensemble", "kind": "ensemble", "experiment": None, "weight": float(w.sum()),
                  "fold_score": None, "oof_score": ens_oof})
    h = ensemble_hash(members, w, method, normalise)
    if out is None:
        out_dir, filename = default_out_dir(members, h, runs_root), "submission.csv"
    else:
        out = Path(out)
        out_dir, filename = (out.parent, out.name) if out.suffix.lower() == ".csv" else (out, "submission.csv")
    record = out_dir / "ensemble.json"
    sub = out_dir / filename
    old = json.loads(record.read_text()) if record.is_file() else None
    common = dict(out_dir=out_dir, submission=sub, record=record, task=task, method=method, normalise=normalise,
                  weights=w.tolist(), ens_hash=h, table=table, oof_score=ens_oof, oof_note=oof_note, fit=fit_info)
    if old is not None and old.get("ensemble_hash") == h and sub.is_file() and not overwrite \
            and sha256_file(sub) == (old.get("submission") or {}).get("sha256"):
        png = out_dir / "correlation.png"
        return BlendResult(heatmap=png if png.is_file() else None, reused=True, **common)
    metrics = {"metric": evaluator_for(task).metric if task in ("belka", "text2mol") else None,
               "oof_score": ens_oof, "members": {r["name"]: {"oof_score": r["oof_score"], "fold_score": r["fold_score"]}
                                                 for r in table[:-1]}}
    if oof_note:
        metrics["oof_note"] = oof_note
    res = build_ensemble([(m.name, m.path) for m in members], out_dir, weights=w, method=method, task=task,
                         spec=spec_for_task(task), metrics=metrics, overwrite=overwrite, filename=filename)
    rec = json.loads(res.record.read_text())
    rec["ensemble_hash"] = h
    for d_, m in zip(rec["members"], members):
        d_["kind"] = m.kind
        if m.experiment is not None:
            d_.update(experiment=m.experiment, config_hash=m.config_hash, evaluation=str(m.evaluation),
                      run_keys=[f"{p.parent.name}/{p.name}" for p in m.run_dirs])
    rec["experiments"] = [m.experiment for m in members if m.experiment is not None]
    if fit_info:
        rec["weights_fit"] = fit_info
    if old is not None and old.get("kaggle_submissions"):
        rec["kaggle_submissions"] = old["kaggle_submissions"]  # what was sent stays on record
    _write_json_atomic(res.record, rec)
    return BlendResult(heatmap=res.heatmap, **common)
