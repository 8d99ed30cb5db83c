"""`molremote evaluate -e <blend>`: a blend's CV, submission and Kaggle submit (molremote.results.blending)."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from ..errors import UsageError
from ..experiments import Registry
from ._app import console


def _fmt(v: Any, nd: int = 4) -> str:
    return "" if v is None else f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def _member_rows(table: Table, members: list[dict[str, Any]], depth: int = 0) -> None:
    for m in members:
        label = ("  " * depth) + f"{m['name']} ({m['kind']})"
        table.add_row(label, f"{m['weight']:.4f}", _fmt(m.get("oof_score")))
        if m["kind"] == "blend":
            _member_rows(table, m["members"], depth + 1)


def evaluate_blend_cmd(
    reg: Registry,
    blend_id: int,
    *,
    folds: str | None,
    split: str,
    submit: bool,
    account: str | None,
    message: str | None,
    overwrite: bool,
    allow_incomplete: bool,
    no_pull: bool,
    sets: list[str],
    as_json: bool,
) -> None:
    from ..results.blending import blend_hash, evaluate_blend
    from ..results.kaggle_submit import competition_for_task, submit_evaluation

    b = reg.blend(blend_id)
    if folds:
        raise UsageError(f"--folds: blend {b.name} uses every fold its members were evaluated on; drop --folds")
    if split != "test":
        raise UsageError(f"--split {split}: a blend is evaluated on its members' out-of-fold rows and test files")
    if allow_incomplete:
        raise UsageError(f"--allow-incomplete: blend {b.name} blends finished runs only; finish its members' runs")
    competition = competition_for_task(b.task) if submit else None  # fail before any work
    rec, reused = evaluate_blend(reg, blend_id, sets=sets, pull=not no_pull, overwrite=overwrite)
    sent = None
    if competition is not None:
        cv = rec["oof_score"] if rec.get("oof_score") is not None else rec.get("mean_fold_score")
        sent = submit_evaluation(rec, b.id, blend_hash(b, sets), cv, competition, message, account)
    if as_json:
        print(json.dumps({**rec, "reused": reused, "submitted": sent}, indent=2, default=str))
        return
    table = Table(title=f"{b.name}  blend {rec['config_hash']}  task {rec['task']}  metric {rec['metric']}")
    for col in ("member", "weight", f"out-of-fold {rec['metric']}"):
        table.add_column(col, justify="left" if col == "member" else "right")
    _member_rows(table, rec["members"])
    console.print(table)
    if rec.get("fold_scores"):
        console.print("blend per fold  " + "  ".join(f"{f}: {_fmt(v)}" for f, v in rec["fold_scores"].items()))
    console.print(
        f"out-of-fold     {_fmt(rec['oof_score']) or 'n/a'}"
        + (f"  ({rec['folds_note']})" if rec.get("folds_note") else "")
    )
    if rec.get("weights_fit"):
        fit = rec["weights_fit"]
        console.print(
            f"weights fitted on {fit['rows']} out-of-fold rows: {_fmt(fit['score'])} "
            f"(uniform {_fmt(fit['uniform_score'])})"
        )
    console.print("leaf weights    " + ", ".join(f"{d['experiment']}: {d['weight']:.4f}" for d in rec["leaf_weights"]))
    what = "unchanged, reused" if reused else f"{rec.get('notes', {}).get('rows', '?')} rows"
    console.print(f"submission      {rec['submission']} ({what})")
    console.print(f"record          {rec['record']}")
    if sent:
        console.print(f'submitted to {sent["competition"]}: ref {sent["ref"]}  "{sent["description"]}"')
