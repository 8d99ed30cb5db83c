"""evaluate / ensemble / scores: scoring, averaging and Kaggle submissions; never import torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ..errors import ExperimentError, SubmissionError
from ._app import app, console, err_console
from ._options import Experiment, Json, KaggleAccount, Message, NoPull


def _fmt(v: Any, nd: int = 4) -> str:
    return "" if v is None else f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def _parse_folds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise ExperimentError(
            f"expected comma-separated fold numbers such as 0,1,2, got {text!r}", field="--folds"
        ) from None


def _cv(rec: dict[str, Any]) -> float | None:
    return rec.get("oof_score") if rec.get("oof_score") is not None else rec.get("mean_fold_score")


@app.command()
def evaluate(
    exp_id: Experiment,
    folds: str | None = typer.Option(None, "--folds", help="Folds to use, e.g. 0,1,2 (default: the experiment's)."),
    split: str = typer.Option("test", "--split", help="valid: scores only; test: scores + the submission file."),
    submit: bool = typer.Option(False, "--submit", help="Send the submission to the task's Kaggle competition."),
    account: KaggleAccount = None,
    message: Message = None,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an evaluation of other runs."),
    allow_incomplete: bool = typer.Option(False, "--allow-incomplete", help="Use runs that did not complete."),
    no_pull: NoPull = False,
    sets: list[str] = typer.Option([], "--set", help="key.path=value overrides the runs were trained with."),
    as_json: Json = False,
) -> None:
    """Fold and out-of-fold scores, and the fold-averaged submission in runs/<exp>/evaluation-<hash>/."""
    from ..experiments import Registry, apply_overrides
    from ..results.evaluate import evaluate_experiment, evaluate_runs, runs_for_experiment
    from ..results.kaggle_submit import competition_for_task, submit_evaluation

    if split not in ("valid", "test"):
        raise ExperimentError(f"--split must be valid or test, got {split!r}", field="--split")
    if submit and split != "test":
        raise ExperimentError(
            "--submit needs --split test (the submission is made from test predictions)", field="--submit"
        )
    reg = Registry()
    if reg.is_blend(exp_id):  # members' OOF blended row by row, the blended submission (molremote/blends.py)
        from ._blend import evaluate_blend_cmd

        return evaluate_blend_cmd(
            reg,
            exp_id,
            folds=folds,
            split=split,
            submit=submit,
            account=account,
            message=message,
            overwrite=overwrite,
            allow_incomplete=allow_incomplete,
            no_pull=no_pull,
            sets=sets,
            as_json=as_json,
        )
    exp = apply_overrides(reg.resolve(exp_id), sets)
    fold_list = _parse_folds(folds)
    competition = competition_for_task(exp.task.name) if submit else None  # fail before any work
    if split == "valid":
        paths = runs_for_experiment(exp, fold_list, pull=not no_pull)
        rec = evaluate_runs(paths, allow_incomplete=allow_incomplete).to_dict()
        reused = False
    else:
        rec, reused = evaluate_experiment(
            exp, fold_list, overwrite=overwrite, pull=not no_pull, allow_incomplete=allow_incomplete
        )
    sent = None
    if competition is not None:  # set when --submit
        sent = submit_evaluation(rec, exp.id, exp.config_hash, _cv(rec), competition, message, account)
    if as_json:
        print(json.dumps({**rec, "reused": reused, "submitted": sent}, indent=2, default=str))
        return
    table = Table(title=f"{exp.name}  config {exp.config_hash}  task {rec['task']}  metric {rec['metric']}")
    for col in ("fold", "run", "rows", rec["metric"], "baseline"):
        table.add_column(col, justify="right" if col not in ("run",) else "left")
    base = rec.get("baseline") or {}
    seed_scores = rec.get("seed_scores") or {}
    for r in rec["runs"]:
        f = str(r["fold"])
        score = (seed_scores.get(f) or {}).get(str(r.get("seed")), rec["fold_scores"].get(f))
        table.add_row(f, r["run_key"], str(rec["n_valid"].get(f, "")), _fmt(score), _fmt(base.get(f)))
    for f, per_seed in sorted(seed_scores.items()):  # each fold's score is its seeds' averaged predictions
        table.add_row(f, f"mean of {len(per_seed)} seeds", "", _fmt(rec["fold_scores"].get(f)), "")
    console.print(table)
    console.print(f"mean of folds   {_fmt(rec['mean_fold_score'])}")
    console.print(f"out-of-fold     {_fmt(rec['oof_score']) or 'n/a (not poolable for this task)'}")
    if base:
        console.print(f"baseline (mean) {_fmt(sum(base.values()) / len(base))}")
    if rec.get("submission"):
        what = "unchanged, reused" if reused else f"{rec.get('notes', {}).get('rows', '?')} rows"
        console.print(f"submission      {rec['submission']} ({what})")
        console.print(f"record          {rec['record']}")
    if sent:
        console.print(f'submitted to {sent["competition"]}: ref {sent["ref"]}  "{sent["description"]}"')


@app.command()
def ensemble(
    experiments: list[int] = typer.Option([], "-e", "--experiment", help="Member experiment (repeat)."),
    inputs: list[Path] = typer.Option([], "-i", "--input", help="Member submission file made elsewhere (repeat)."),
    weights: str | None = typer.Option(
        None,
        "--weights",
        "-w",
        help="0.5,0.3,0.2 (members in order: -e then -i) "
        "or auto (fitted on out-of-fold predictions). Default: uniform.",
    ),
    method: str | None = typer.Option(None, "--method", help="mean | rank | geo | logit (default: the task's)."),
    task: str | None = typer.Option(
        None, "--task", help="Task of -i files when no -e member says it (default: inferred from their header)."
    ),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Output folder, or a .csv path (default runs/ensembles/<members>-<hash>/)."
    ),
    submit: bool = typer.Option(False, "--submit", help="Send the ensemble to the task's Kaggle competition."),
    account: KaggleAccount = None,
    message: Message = None,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    no_pull: NoPull = False,
    as_json: Json = False,
) -> None:
    """Average experiments' evaluated test predictions and/or submission files, aligned by id."""
    from ..experiments import Registry
    from ..results.averaging import METHODS
    from ..results.ensemble import blend, infer_task, parse_weights
    from ..results.kaggle_submit import competition_for_task, describe_ensemble, short_commit, submit_and_record
    from ..results.members import experiment_member, file_member

    if not experiments and not inputs:
        raise SubmissionError("no ensemble members: give experiments with -e and/or files with -i")
    if method is not None and method not in METHODS:
        raise SubmissionError(f"--method {method!r}: choose from {', '.join(METHODS)}")
    reg = Registry()
    exps = [reg.blend(i) if reg.is_blend(i) else reg.resolve(i) for i in experiments]  # a blend: its evaluation
    task_of = [e.task if isinstance(e.task, str) else e.task.name for e in exps]
    tasks = set(task_of) | ({task} if task else set())
    if not tasks:  # -i files only: the task whose submission format their headers fit
        tasks = {infer_task(inputs)}
    if len(tasks) > 1:
        named = ", ".join(f"{e.name}: {t}" for e, t in zip(exps, task_of)) + (f"; --task {task}" if task else "")
        raise SubmissionError(f"ensemble members are for different tasks ({named})")
    task_name = tasks.pop()
    w = parse_weights(weights, len(exps) + len(inputs))
    competition = competition_for_task(task_name) if submit else None  # fail before any work
    from ..results.blending import blend_member

    members = [
        blend_member(reg, e.id, pull=not no_pull) if reg.is_blend(e.id) else experiment_member(e, pull=not no_pull)
        for e in exps
    ] + [file_member(p) for p in inputs]
    res = blend(members, task_name, weights=w, method=method, out=out, overwrite=overwrite)
    sent = None
    if competition is not None:  # set when --submit
        from ..runs import code_info

        # the commit(s) that trained the member runs; for files only, the code building the ensemble
        codes = [
            r.get("code") for m in members if m.evaluation for r in json.loads(m.evaluation.read_text()).get("runs", [])
        ] or [code_info()]
        desc = describe_ensemble(
            [m.experiment for m in members if m.experiment is not None],
            sum(m.experiment is None for m in members),
            res.weights,
            res.ens_hash,
            short_commit(codes),
            res.oof_score,
        )
        desc = f"{desc} {message}" if message else desc
        sent = submit_and_record(res.record, res.submission, competition, desc, account)
    if as_json:
        print(
            json.dumps(
                {
                    "out_dir": str(res.out_dir),
                    "submission": str(res.submission),
                    "record": str(res.record),
                    "heatmap": str(res.heatmap) if res.heatmap else None,
                    "task": res.task,
                    "method": res.method,
                    "normalise": res.normalise,
                    "weights": res.weights,
                    "ensemble_hash": res.ens_hash,
                    "members": res.table,
                    "oof_score": res.oof_score,
                    "oof_note": res.oof_note,
                    "weights_fit": res.fit,
                    "reused": res.reused,
                    "submitted": sent,
                },
                indent=2,
                default=str,
            )
        )
        return
    table = Table(
        title=f"ensemble of {len(members)} ({res.task}, {res.method}"
        f"{', ' + res.normalise + '-normalised' if res.normalise else ''})"
    )
    for col in ("member", "kind", "weight", "mean fold", "out-of-fold"):
        table.add_column(col, justify="left" if col in ("member", "kind") else "right")
    for r in res.table:
        is_ens = r["kind"] == "ensemble"
        table.add_row(
            f"[bold]{r['name']}[/]" if is_ens else r["name"],
            "" if is_ens else r["kind"],
            "" if is_ens else f"{r['weight']:.3f}",
            _fmt(r["fold_score"]),
            f"[bold]{_fmt(r['oof_score'])}[/]" if is_ens else _fmt(r["oof_score"]),
        )
    console.print(table)
    if res.oof_note:
        console.print(f"[yellow]no out-of-fold score:[/] {res.oof_note}")
    if res.fit:
        console.print(
            f"weights fitted on {res.fit['rows']} out-of-fold rows: {res.fit['score']:.4f} "
            f"(uniform {res.fit['uniform_score']:.4f})"
        )
    console.print(f"submission  {res.submission}" + (" (unchanged, reused)" if res.reused else ""))
    console.print(f"record      {res.record}")
    if res.heatmap:
        console.print(f"heatmap     {res.heatmap}")
    if sent:
        console.print(f'submitted to {sent["competition"]}: ref {sent["ref"]}  "{sent["description"]}"')


@app.command()
def scores(
    competition: str | None = typer.Option(None, "--competition", "-c", help="Kaggle competition slug."),
    exp_id: int | None = typer.Option(None, "-e", "--experiment", help="Only submissions naming this experiment."),
    account: KaggleAccount = None,
    as_json: Json = False,
    plot: bool = typer.Option(False, "--plot", help="Also draw CV against public/private score per submission."),
    plot_out: Path | None = typer.Option(
        None, "--plot-out", help="Figure file, .png or .svg (default scores-<competition>.png)."
    ),
) -> None:
    """A competition's submissions with public/private scores, joined back to experiments and local records
    (kept in .molremote/scores/ for `molremote report`)."""
    from ..backends.kaggle_api import KaggleClient
    from ..results.kaggle_submit import choose_competition, join_scores, local_records

    competition = choose_competition(competition, exp_id)
    from ..report.leaderboard import draw, save_scores

    every = join_scores(KaggleClient(account).submissions(competition), local_records())
    save_scores(competition, every)
    rows = [r for r in every if exp_id is None or exp_id in r["experiments"]]
    figure = corr = None
    if plot:
        figure, corr = draw(rows, plot_out or Path(f"scores-{competition}.png"), competition)
    if as_json:
        print(
            json.dumps(
                {
                    "competition": competition,
                    "submissions": rows,
                    "plot": str(figure) if figure else None,
                    "correlation": corr,
                },
                indent=2,
                default=str,
            )
        )
        return
    table = Table(title=f"{competition}: {len(rows)} submission(s)")
    for col in ("ref", "date", "status", "public", "private", "experiments", "cv", "commit", "record"):
        table.add_column(col, justify="right" if col in ("public", "private", "cv", "ref") else "left", overflow="fold")
    for r in rows:
        exps = (
            ("ens " if r["kind"] == "ensemble" else "") + "+".join(str(e) for e in r["experiments"])
            if r["molremote"]
            else f"[dim]{r.get('description') or ''}[/]"
        )
        rec = ""
        if r["record"]:
            rec = str(Path(r["record"]).parent.name) + (
                "" if r["file_matches"] in (True, None) else " [yellow](file changed)[/]"
            )
        table.add_row(
            str(r["ref"]),
            (r.get("date") or "")[:16],
            r.get("status") or "",
            _fmt(r.get("public_score"), 5),
            _fmt(r.get("private_score"), 5),
            exps,
            _fmt(r["cv"]),
            r["commit"] or "",
            rec,
        )
    console.print(table)
    if not rows:
        err_console.print("no submissions" + (f" naming experiment {exp_id}" if exp_id is not None else ""))
    if figure and corr is not None:  # both come from draw()
        from ..report.leaderboard import describe

        console.print(f"{describe(corr)}\nplot  {figure}")
