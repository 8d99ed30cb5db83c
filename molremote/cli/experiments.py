"""ls / show / diff: read experiments, never import torch."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from ..errors import ExperimentError
from ..experiments import Registry, apply_overrides
from ..experiments import diff as diff_experiments
from ..runs import iter_local_runs
from ._app import app, console
from ._options import Json, Sets


def _last_runs() -> dict[int, dict]:
    last: dict[int, dict] = {}
    for _path, m in iter_local_runs():
        if isinstance(m.get("experiment"), int):
            last[m["experiment"]] = m  # sorted oldest -> newest: the newest wins
    return last


# ls columns: (key, header). Every column but the description is as wide as its widest cell and never cut
# (the score above all); the description takes what is left of the terminal and is dropped below
# MIN_DESCRIPTION characters. Two spaces between columns, no borders: 80 columns hold the demo's rows.
LS_COLUMNS = (
    ("id", "id"),
    ("task", "task"),
    ("model", "model"),
    ("parent", "from"),
    ("status", "status"),
    ("score", "score"),
    ("description", "description"),
)
MIN_DESCRIPTION = 12
# (column, narrowest width) cut with an ellipsis, in this order, when the description would not fit otherwise;
# id, status and score are never cut (`show ID` has the rest)
SHRINKABLE = (("parent", 5), ("model", 8))


def _ls_cells(r: dict) -> dict[str, str]:
    if "error" in r:
        return {
            "id": f"{r['id']:04d}",
            "task": "invalid",
            "model": "",
            "parent": "",
            "status": "",
            "score": "",
            "description": r["error"],
        }
    score = f"{r['score']:.4f} {r['metric']}" if r["score"] is not None else ""
    return {
        "id": f"{r['id']:04d}",
        "task": r["task"],
        "model": r["model"],
        "parent": "" if r["parent"] is None else str(r["parent"]),
        "status": (r["status"] or "") + (f" (seed {r['seed']})" if r.get("seed") is not None else ""),
        "score": score,
        "description": r["description"] or "",
    }


def _ls_table(rows: list[dict], where: object, width: int) -> Table:
    cells = [_ls_cells(r) for r in rows]
    fixed = {k: max([len(h)] + [len(c[k]) for c in cells]) for k, h in LS_COLUMNS if k != "description"}
    left = width - sum(fixed.values()) - 2 * (len(LS_COLUMNS) - 1)
    cut: set[str] = set()
    for k, floor in SHRINKABLE:  # long blend member lists / model names give way before the description does
        take = min(MIN_DESCRIPTION - left, fixed[k] - floor)
        if take > 0:
            fixed[k], left = fixed[k] - take, left + take
            cut.add(k)
    cols = [(k, h) for k, h in LS_COLUMNS if k != "description" or left >= MIN_DESCRIPTION]
    table = Table(
        title=f"experiments ({where})",
        box=None,
        padding=(0, 1),
        pad_edge=False,
        show_edge=False,
        header_style="bold",
        title_justify="left",
    )
    for k, h in cols:
        if k == "description":  # one line per experiment: `molremote show ID` has it whole
            table.add_column(h, no_wrap=True, overflow="ellipsis", max_width=left)
        elif k in cut:
            table.add_column(h, no_wrap=True, overflow="ellipsis", min_width=fixed[k], max_width=fixed[k])
        else:
            table.add_column(h, no_wrap=True, min_width=fixed[k], justify="right" if k == "score" else "left")
    for r, c in zip(rows, cells):
        style = "red" if "error" in r else None
        table.add_row(*(c[k] for k, _ in cols), style=style)
    return table


@app.command("ls")
def ls(as_json: Json = False) -> None:
    """List experiments: id, task, model, parent, description, last local status and score."""
    reg = Registry()
    last = _last_runs()
    rows = []
    for i in reg.ids():
        try:
            if reg.is_blend(i):
                rows.append(_blend_row(reg, i))
                continue
            e = reg.resolve(i)
            m = last.get(i) or {}
            best = m.get("best") or {}
            rows.append(
                {
                    "id": i,
                    "kind": "experiment",
                    "task": e.task.name,
                    "model": e.model.name,
                    "parent": e.parent,
                    "description": e.description,
                    "status": m.get("status"),
                    "seed": m.get("seed"),  # the last run's seed, when the experiment lists several
                    "seeds": e.training.seeds,
                    "score": best.get("value"),
                    "metric": best.get("metric"),
                }
            )
        except ExperimentError as err:
            rows.append({"id": i, "error": str(err)})
    if as_json:
        console.print_json(json.dumps(rows))
        return
    console.print(_ls_table(rows, reg.dir, console.width))
    for r in rows:  # the table cuts descriptions: invalid experiments' errors in full below it
        if "error" in r:
            console.print(f"{r['id']:04d}: {r['error']}", style="red", markup=False, highlight=False)


def _blend_row(reg: Registry, i: int) -> dict:
    """A blend's `ls` row: model `blend`, its members in the `from` column, the score of its last evaluation."""
    from ..results.blending import blend_dir
    from ..results.evaluate import read_evaluation

    b = reg.blend(i)
    rec = read_evaluation(blend_dir(b)) if (blend_dir(b) / "evaluation.json").is_file() else {}
    return {
        "id": i,
        "kind": "blend",
        "task": b.task,
        "model": "blend",
        "parent": "+".join(str(m.experiment) for m in b.members),
        "members": [{"experiment": m.experiment, "weight": m.weight} for m in b.members],
        "description": b.description,
        "status": "evaluated" if rec else None,
        "score": rec.get("oof_score"),
        "metric": rec.get("metric"),
    }


@app.command()
def show(
    exp_id: int = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json", help="Print the resolved JSON (what travels)."),
    sets: Sets = None,
) -> None:
    """Show an experiment's resolved configuration (a blend: its members and weights)."""
    reg = Registry()
    if reg.is_blend(exp_id):
        b = reg.blend(exp_id)
        if as_json:
            print(json.dumps(b.to_json(), indent=2, sort_keys=True))
            return
        console.print(f"[bold]{b.name}[/]  blend  hash {b.config_hash}  task {b.task}  file {b.file}")
        if b.description:
            console.print(b.description)
        for m, kind in zip(b.members, b.member_kinds):
            w = m.weight if m.weight == "auto" else f"{m.weight:g}"
            console.print(f"  {kind:<10} {m.experiment:>4}  weight {w}")
        from ..blends import fixed_leaf_weights

        leaves = fixed_leaf_weights(reg, exp_id)
        if leaves and any(k == "blend" for k in b.member_kinds):
            console.print("leaf weights  " + ", ".join(f"{j}: {w:.4g}" for j, w in leaves.items()))
        return
    exp = apply_overrides(reg.resolve(exp_id), sets)
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


@app.command("derive")
def derive_cmd(
    parent: int = typer.Argument(..., metavar="PARENT", help="The experiment the new ones derive from."),
    grid: list[str] = typer.Option(
        [], "--grid", help="key.path=v1,v2,...: one axis of the grid (repeat: every combination)."
    ),
    sets: Sets = None,
    why: str | None = typer.Option(None, "--why", help="Why this grid: written into each file's docstring."),
    as_json: Json = False,
) -> None:
    """Write derived experiments over a grid of overrides (numbered files, next free ids); print their ids.

    Example: molremote derive 400 --grid training.lr=1e-4,3e-4 --grid training.batch_size=256,512"""
    import shlex
    import sys

    from ..grid import derive_grid

    points = derive_grid(
        parent, grid, sets=sets, why=why, command="molremote " + shlex.join(sys.argv[1:]) if sys.argv else ""
    )
    if as_json:
        console.print_json(json.dumps([{"id": p.id, "file": str(p.path), "overrides": p.overrides} for p in points]))
        return
    for p in points:
        print(p.id)
