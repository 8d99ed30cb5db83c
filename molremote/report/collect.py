"""Everything the report shows, gathered into plain JSON-able dicts: experiments, runs and their curves,
evaluation and ensemble records, Kaggle scores (as last fetched by `molremote scores`), and running jobs.

Sources: the experiment files (a broken one is shown as such, not fatal), run folders through `runs.py`,
the store's manifests for runs not pulled here, `evaluation.json` / `ensemble.json` records, the scores cache
and the job records. Nothing here imports torch.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..runs import iter_local_runs, now_iso, read_json
from .leaderboard import load_cached_scores
from .series import Curve, RunCurve, average_seeds, run_curve

ACTIVE_JOB_STATES = ("pending", "running")


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict) and d:
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    out[prefix[:-1]] = d
    return out


def config_diff(parent: dict[str, Any] | None, child: dict[str, Any]) -> list[dict[str, Any]]:
    """Key paths whose values differ between two experiment configs (identity and notes left out)."""
    if parent is None:
        return []
    skip = ("id", "slug", "parent", "description", "tags", "config_hash", "file")
    fa, fb = _flatten(parent), _flatten(child)
    return [
        {"key": k, "parent": fa.get(k), "value": fb.get(k)}
        for k in sorted(set(fa) | set(fb))
        if k.split(".")[0] not in skip and fa.get(k) != fb.get(k)
    ]


def _age(iso: str | None, now: dt.datetime) -> float | None:
    try:
        t = dt.datetime.fromisoformat(str(iso))
    except (TypeError, ValueError):
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (now - t).total_seconds())


def _experiments(warnings: list[str]) -> dict[int, dict[str, Any]]:
    from ..errors import MolremoteError
    from ..experiments import Registry

    reg = Registry()
    out: dict[int, dict[str, Any]] = {}
    try:
        ids = reg.ids()
    except MolremoteError as e:
        warnings.append(f"experiments: {e}")
        return out
    for i in ids:
        try:
            exp = reg.resolve_any(i)  # a blend's JSON has the same task/model names (model "blend")
            out[i] = {"config": exp.to_json(), "file": str(reg.files[i]), "error": None}
        except MolremoteError as e:
            out[i] = {"config": None, "file": str(reg.files[i]), "error": str(e)}
    return out


def _store_runs(warnings: list[str]) -> list[dict[str, Any]]:
    try:
        from ..store import configured_store

        store = configured_store()
        return (
            [] if store is None else [{"key": r["key"], "manifest": r.get("manifest") or {}} for r in store.list_runs()]
        )
    except Exception as e:  # an unreachable store costs its runs' rows, not the report
        warnings.append(f"store: {type(e).__name__}: {e}")
        return []


def _run_row(key: str, manifest: dict[str, Any], where: str, curve: RunCurve | None) -> dict[str, Any]:
    sessions = manifest.get("sessions") or []
    machine = manifest.get("machine") or {}
    best = manifest.get("best") or {}
    return {
        "key": key,
        "fold": manifest.get("fold"),
        "config_hash": manifest.get("config_hash"),
        "seed": curve.seed if curve else None,
        "status": manifest.get("status") or "unknown",
        "backend": machine.get("backend") or (sessions[-1].get("backend") if sessions else None),
        "host": machine.get("hostname") or (sessions[-1].get("host") if sessions else None),
        "sessions": len(sessions),
        "epochs": len(curve.epochs) if curve else None,
        "best_metric": best.get("metric"),
        "best": best.get("value"),
        "best_epoch": best.get("epoch"),
        "created_at": manifest.get("created_at"),
        "updated_at": manifest.get("updated_at"),
        "where": where,
        "commit": (manifest.get("code") or {}).get("commit"),
    }


def _status(runs: list[dict[str, Any]], n_folds: int | None) -> str:
    states = {r["status"] for r in runs}
    if not runs:
        return "not run"
    if "running" in states:
        return "running"
    done = {r["fold"] for r in runs if r["status"] == "complete"}
    if n_folds and len(done) >= n_folds:
        return "complete"
    if "failed" in states:
        return "failed"
    return "partial" if done else ("incomplete" if "incomplete" in states else sorted(states)[0])


def _records(runs_root: Path | None, warnings: list[str]) -> tuple[list[dict], list[dict]]:
    from ..results.kaggle_submit import local_records

    evaluations: list[dict[str, Any]] = []
    ensembles: list[dict[str, Any]] = []
    try:
        recs = local_records(runs_root)
    except OSError as e:
        warnings.append(f"records: {e}")
        return evaluations, ensembles
    for r in recs:
        (evaluations if r["kind"] == "evaluation" else ensembles).append({**r["record"], "_path": str(r["path"])})
    return evaluations, ensembles


def _heatmap(record_path: str) -> str | None:
    for p in sorted(Path(record_path).parent.glob("*.png")):
        return str(p)
    return None


def collect(
    *,
    runs_root: Path | None = None,
    include_store: bool = True,
    with_curves: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The report's data. `runs_root`: the runs folder (default the project's)."""
    from .. import jobs as jobs_mod
    from ..project import project_root, runs_dir

    now = dt.datetime.now(dt.timezone.utc)
    warnings: list[str] = []
    exps = _experiments(warnings)
    root = Path(runs_root or runs_dir())
    by_exp: dict[int, list[dict[str, Any]]] = {}
    curves_by_exp: dict[int, list[RunCurve]] = {}
    local_keys = set()
    configs: dict[int, dict[str, Any]] = {}
    for path, m in iter_local_runs(root):
        cfg = read_json(path / "config.json")
        eid = m.get("experiment", (cfg or {}).get("id"))
        if eid is None:
            warnings.append(f"{path / 'manifest.json'}: no 'experiment' field; run skipped")
            continue
        eid = int(eid)
        if cfg:
            configs.setdefault(eid, cfg)
        curve = run_curve(path, m, cfg) if with_curves else None
        key = m.get("run_key") or f"{path.parent.name}/{path.name}"
        local_keys.add(key)
        by_exp.setdefault(eid, []).append(_run_row(key, m, "local", curve))
        if curve is not None:
            curves_by_exp.setdefault(eid, []).append(curve)
    if progress:
        progress(f"{len(local_keys)} local runs read")
    if include_store:
        for r in _store_runs(warnings):
            if r["key"] in local_keys:
                continue
            m = r["manifest"]
            if m.get("experiment") is None:
                continue
            by_exp.setdefault(int(m["experiment"]), []).append(_run_row(r["key"], m, "store", None))
    evaluations, ensembles = _records(root, warnings)
    scores = load_cached_scores()
    lb_by_exp: dict[int, dict[str, Any]] = {}
    for s in scores["submissions"]:
        if s.get("kind") == "ensemble" or len(s.get("experiments") or []) != 1:
            continue
        e = int(s["experiments"][0])
        cur = lb_by_exp.setdefault(e, {"public": None, "private": None, "n": 0})
        cur["n"] += 1
        for k, col in (("public", "public_score"), ("private", "private_score")):
            v = s.get(col)
            if isinstance(v, (int, float)) and (cur[k] is None or v > cur[k]):
                cur[k] = v
    cv_by_exp: dict[int, list[dict[str, Any]]] = {}
    for ev in evaluations:
        eid = ev.get("experiment")
        if eid is None:
            continue
        cv = ev.get("oof_score") if ev.get("oof_score") is not None else ev.get("mean_fold_score")
        cv_by_exp.setdefault(int(eid), []).append(
            {
                "cv": cv,
                "metric": ev.get("metric"),
                "folds": ev.get("folds") or sorted(ev.get("fold_scores") or {}),
                "fold_scores": ev.get("fold_scores"),
                "oof": ev.get("oof_score"),
                "mean_fold": ev.get("mean_fold_score"),
                "config_hash": ev.get("config_hash"),
                "greater_is_better": ev.get("greater_is_better", True),
                "record": ev["_path"],
                "submissions": len(ev.get("kaggle_submissions") or []),
            }
        )

    experiments = []
    for eid in sorted(set(exps) | set(by_exp)):
        info = exps.get(eid) or {"config": None, "file": None, "error": None}
        cfg = info["config"] or configs.get(eid) or {}
        runs = sorted(by_exp.get(eid, []), key=lambda r: (r["fold"] if r["fold"] is not None else -1, r["key"]))
        folds_cfg = cfg.get("folds") or {}
        n_folds = len(folds_cfg["run"]) if folds_cfg.get("run") else folds_cfg.get("n_folds")
        done = sorted({r["fold"] for r in runs if r["status"] == "complete" and r["fold"] is not None})
        evs = cv_by_exp.get(eid, [])
        cvs = [e["cv"] for e in evs if isinstance(e["cv"], (int, float))]
        gib = all(e["greater_is_better"] for e in evs)
        best_cv = (max(cvs) if gib else min(cvs)) if cvs else None
        bests = [r["best"] for r in runs if isinstance(r["best"], (int, float))]
        parent = cfg.get("parent")
        parent_cfg = (exps.get(parent) or {}).get("config") or configs.get(parent) if parent is not None else None
        lb = lb_by_exp.get(eid) or {}
        curves: list[Curve] = average_seeds(curves_by_exp.get(eid, []), _metric_of(curves_by_exp.get(eid, [])))
        updated = max((r["updated_at"] or "" for r in runs), default="") or None
        experiments.append(
            {
                "id": eid,
                "name": f"{eid:04d}_{cfg.get('slug', '?')}"
                if cfg
                else (runs[0]["key"].split("/")[0] if runs else f"{eid:04d}"),
                "parent": parent,
                "task": (cfg.get("task") or {}).get("name"),
                "model": (cfg.get("model") or {}).get("name"),
                "description": cfg.get("description") or "",
                "tags": cfg.get("tags") or [],
                "status": "invalid" if info["error"] else _status(runs, n_folds),
                "error": info["error"],
                "where": sorted({r["backend"] for r in runs if r["backend"]}),
                "folds_done": len(done),
                "n_folds": n_folds,
                "best_cv": best_cv,
                "cv_metric": next((e["metric"] for e in evs if e["metric"]), None)
                or next((r["best_metric"] for r in runs if r["best_metric"]), None),
                "fold_best_mean": sum(bests) / len(bests) if bests else None,
                "public": lb.get("public"),
                "private": lb.get("private"),
                "updated_at": updated,
                "config": cfg or None,
                "diff": config_diff(parent_cfg, cfg) if cfg and parent_cfg else [],
                "parent_known": parent_cfg is not None,
                "file": info["file"],
                "runs": runs,
                "evaluations": evs,
                "curves": [_compact(c) for c in curves],
            }
        )

    blends = []
    for rec in ensembles:
        members = [
            {"name": m.get("name"), "experiment": m.get("experiment"), "run_key": m.get("run_key"), "weight": w}
            for m, w in zip(rec.get("members") or [], rec.get("weights") or [])
        ]
        metrics = rec.get("metrics") or {}
        blends.append(
            {
                "name": Path(rec["_path"]).parent.name,
                "task": rec.get("task"),
                "method": rec.get("method"),
                "created_at": rec.get("created_at"),
                "members": members,
                "oof_score": metrics.get("oof_score", rec.get("oof_score")),
                "submissions": len(rec.get("kaggle_submissions") or []),
                "record": rec["_path"],
                "heatmap": _heatmap(rec["_path"]),
            }
        )

    jobs = []
    try:
        for j in jobs_mod.load_all(project_root()):
            if j.state in ACTIVE_JOB_STATES:
                jobs.append(
                    {
                        "job_id": j.job_id,
                        "backend": j.backend,
                        "experiment": j.experiment,
                        "experiment_id": j.experiment_id,
                        "folds": j.folds,
                        "state": j.state,
                        "created_at": j.created_at,
                        "age_s": _age(j.created_at, now),
                        "detail": j.detail,
                    }
                )
    except Exception as e:  # unreadable job folder: the rest of the report still stands
        warnings.append(f"jobs: {e}")
    return {
        "generated_at": now_iso(),
        "project": str(project_root()),
        "runs_root": str(root),
        "experiments": experiments,
        "blends": blends,
        "jobs": jobs,
        "scores": scores,
        "warnings": warnings,
        "n_runs": sum(len(e["runs"]) for e in experiments),
    }


def _metric_of(curves: list[RunCurve]) -> str | None:
    names = sorted({k for c in curves for k in c.valid})
    return names[0] if names else None


def _round(v: Any) -> Any:
    return None if v is None else round(v, 6)


def _compact(c: Curve) -> dict[str, Any]:
    """A curve for the page's JSON: values rounded to 6 digits (the plot cannot show more), bands only
    where there are several seeds."""
    d: dict[str, Any] = {
        "label": c.label(),
        "fold": c.fold,
        "variant": c.variant[:6],
        "metric": c.metric,
        "seeds": len(c.seeds),
        "x": c.epochs,
        "loss": [_round(v) for v in c.loss],
        "valid": [_round(v) for v in c.valid],
        "boundaries": c.boundaries,
    }
    if len(c.seeds) > 1:
        d.update(
            loss_lo=[_round(v) for v in c.loss_lo],
            loss_hi=[_round(v) for v in c.loss_hi],
            valid_lo=[_round(v) for v in c.valid_lo],
            valid_hi=[_round(v) for v in c.valid_hi],
        )
    return d


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, default=str, separators=(",", ":"))
