"""ls / show / diff: read experiments, never import torch."""
from __future__ import annotations

import json

import typer
from rich.table import Table

from ..errors import ExperimentError
from ..experiments import Registry, apply_overrides, diff as diff_experiments
from ..runs import iter_local_runs
from ._app import app, console


def _last_runs() -> dict[int, dict]:
    last: dict[int, dict] = {}
    for _path, m in iter_local_runs():
        if isinstance(m.get("experiment"), int):
            last[m["experiment"]] = m  # sorted oldest -> newest: the newest wins
    return last


@app.command("ls")
def ls(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List experiments: id, task, model, parent, description, last local status and score."""
    reg = Registry()
    last = _last_runs()
    rows = []
    for i in reg.ids():
        try:
            e = reg.resolve(i)
            m = last.get(i) or {}
            best = m.get("best") or {}
            rows.append({"id": i, "task": e.task.name, "model": e.model.name, "parent": e.parent,
                         "description": e.description, "status": m.get("status"),
                         "score": best.get("value"), "metric": best.get("metric")})
        except ExperimentError as err:
            rows.append({"id": i, "error": str(err)})
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title=f"experiments ({reg.dir})")
    for col in ("id", "task", "model", "parent", "description", "status", "score"):
        # one line per experiment: long descriptions are cut (`molremote show ID` has them whole)
        table.add_column(col, no_wrap=True, overflow="ellipsis",
                         max_width=max(16, console.width - 68) if col == "description" else None,
                         min_width={"id": 4, "parent": 6, "status": 8}.get(col))
    for r in rows:
        if "error" in r:
            table.add_row(str(r["id"]), "[red]invalid[/]", "", "", f"[red]{r['error']}[/]", "", "")
            continue
        score = f"{r['score']:.4f} {r['metric']}" if r["score"] is not None else ""
        table.add_row(f"{r['id']:04d}", r["task"], r["model"], "" if r["parent"] is None else str(r["parent"]),
                      r["description"], r["status"] or "", score)
    console.print(table)


@app.command()
def show(exp_id: int = typer.Argument(..., metavar="ID"),
         as_json: bool = typer.Option(False, "--json", help="Print the resolved JSON (what travels)."),
         sets: list[str] = typer.Option([], "--set", help="key.path=value overrides")) -> None:
    """Show an experiment's resolved configuration."""
    exp = apply_overrides(Registry().resolve(exp_id), sets)
    if as_json:
        print(json.dumps(exp.to_json(), indent=2, sort_keys=True))
        return
    from rich.pretty import Pretty

    console.print(f"[bold]{exp.name}[/]  hash {exp.config_hash}  parent {exp.parent}  file {exp.file}")
    if exp.description:
        console.print(exp.description)
    d = exp.to_dict()
    for k in ("task", "model", "training", "folds", "data", "backend"):
        console.print(f"[cyan]{k}[/]", Pretty(d[k]))


@app.command()
def diff(a: int = typer.Argument(..., metavar="A"), b: int = typer.Argument(..., metavar="B")) -> None:
    """Only what differs between two resolved experiments."""
    reg = Registry()
    ea, eb = reg.resolve(a), reg.resolve(b)
    rows = diff_experiments(ea, eb)
    if not rows:
        console.print(f"{ea.name} and {eb.name} resolve to the same configuration (hash {ea.config_hash})")
        return
    table = Table(title=f"{ea.name} -> {eb.name}")
    table.add_column("key")
    table.add_column(str(a))
    table.add_column(str(b))
    for k, va, vb in rows:
        table.add_row(k, json.dumps(va), json.dumps(vb))
    console.print(table)
