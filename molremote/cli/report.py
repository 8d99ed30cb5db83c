"""plot / report: learning curves and the HTML report of every experiment; never import torch."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import ExperimentError
from ._app import app, console, err_console


@app.command()
def plot(
    experiments: list[int] = typer.Option(..., "-e", "--experiment", help="Experiment id (repeat to compare)."),
    metric: str | None = typer.Option(
        None, "--metric", help="Validation metric, e.g. lrap (default: the one the runs logged)."
    ),
    out: Path = typer.Option(Path("curves.png"), "-o", "--out", help="Output file, .png or .svg."),
    title: str | None = typer.Option(None, "--title", help="Figure title (default: the experiment names)."),
) -> None:
    """Learning curves from the local run folders' metrics.jsonl: train loss and validation metric per epoch,
    every fold, seeds averaged with a min-max band, resumed sessions marked."""
    from ..project import runs_dir
    from ..report.curves import draw, figure_format
    from ..report.series import average_seeds, choose_metric, run_curve
    from ..runs import iter_local_runs

    figure_format(out)  # a wrong extension fails before any reading
    runs = []
    for e in dict.fromkeys(experiments):
        found = [run_curve(p, m) for p, m in iter_local_runs(experiment=e)]
        if not found:
            raise ExperimentError(
                f"no local run of experiment {e} under {runs_dir()} (train it, or bring it here "
                f"with `molremote pull -e {e}`)",
                field="-e",
            )
        runs += found
    chosen = choose_metric(runs, metric)
    curves = [c for c in average_seeds(runs, chosen) if c.epochs]
    path = draw(curves, out, title=title)
    console.print(
        f"wrote {path}  ({len(curves)} curve(s) from {len(runs)} run(s); metric {chosen or 'none'})", soft_wrap=True
    )


@app.command()
def report(
    out: Path = typer.Option(Path("report.html"), "-o", "--out", help="Output HTML file."),
    runs_root: Path | None = typer.Option(None, "--runs", help="Runs folder (default: the project's runs/)."),
    no_store: bool = typer.Option(False, "--no-store", help="Do not list the store's runs (offline, faster)."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
    serve: bool = typer.Option(
        False, "--serve", help="Serve it on localhost, rebuilt and reloaded every --every seconds, until Ctrl-C."
    ),
    port: int = typer.Option(8765, "--port", help="--serve: the port (0: any free one)."),
    every: float = typer.Option(30.0, "--every", help="--serve: seconds between rebuilds."),
) -> None:
    """One self-contained HTML file of every experiment: sortable table, a page per experiment (config, diff
    against its parent, curves, runs), blends, running jobs, CV against leaderboard. Opens offline."""
    import time

    from ..report.html import build

    if out.suffix.lower() not in (".html", ".htm"):
        raise ExperimentError(f"cannot write {out}: the report is HTML, name it *.html", field="-o")
    if serve:
        from ..report.serve import ReportServer

        if every < 1:
            raise ExperimentError(f"--every {every}: rebuild at most once a second", field="--every")
        srv = ReportServer(
            out,
            port=port,
            every=every,
            log=err_console.print,
            build_kwargs={"runs_root": runs_root, "include_store": not no_store},
        )
        console.print(f"serving {srv.url}  (rebuilt every {every:g} s into {out}; Ctrl-C stops)", soft_wrap=True)
        try:
            # wake every second: the kernel may hand Ctrl-C's SIGINT to a server thread, and Python runs the
            # handler (KeyboardInterrupt) only when the main thread next runs; a wait with no timeout never would
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass
        finally:
            srv.stop()
        return
    t0 = time.perf_counter()
    res = build(out, runs_root=runs_root, include_store=not no_store)
    res["seconds"] = round(time.perf_counter() - t0, 3)
    if as_json:
        print(json.dumps(res, indent=2))
        return
    for w in res["warnings"]:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(
        f"wrote {res['path']}  ({res['bytes'] / 1e6:.2f} MB: {res['experiments']} experiments, "
        f"{res['runs']} runs, {res['blends']} blends, {res['jobs']} running jobs; {res['seconds']:.1f} s)",
        soft_wrap=True,
    )
