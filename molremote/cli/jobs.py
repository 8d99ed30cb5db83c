"""status / logs / cancel / fetch: follow launched jobs on any backend, from their job records. No torch.

Each command finds the job record (`.molremote/jobs/`), rebuilds the backend that launched it from the
options saved there, and asks it; the backends (kaggle, ssh, slurm) know their own traps.
"""

from __future__ import annotations

import json
import sys

import typer
from rich.table import Table

from ..errors import MolremoteError
from ._app import app, console, err_console
from ._options import ExperimentOpt, JobExperiment, JobId, Json


@app.command()
def status(
    exp_id: ExperimentOpt = None,
    refresh: bool = typer.Option(True, "--refresh/--no-refresh", help="Ask the backends about unfinished jobs."),
    all_jobs: bool = typer.Option(False, "--all", help="Also list finished jobs older than the latest per run."),
    as_json: Json = False,
) -> None:
    """All launched jobs (any backend) in one table; unfinished ones are refreshed from their backend."""
    from .. import jobs
    from ..backends import refresh as refresh_job

    recs = jobs.load_all(experiment=exp_id)
    if not recs and not as_json:
        console.print(f"no jobs{f' of experiment {exp_id}' if exp_id is not None else ''} in {jobs.jobs_dir()}")
        return
    if not all_jobs:
        recs = jobs.latest_per_run(recs)
    rows = []
    tails = []  # jobs seen failing in this refresh: their log tail goes under the table
    for r in recs:
        detail = r.detail
        if refresh and r.state not in jobs.TERMINAL:
            try:
                r, st = refresh_job(r)
                detail = st.detail
                if st.state == "failed" and st.log_tail:
                    tails.append((r, st.log_tail))
            except MolremoteError as e:  # one unreachable host must not hide the other jobs
                detail = f"(not refreshed: {e})"
        rows.append((r, detail))
    if as_json:
        print(json.dumps([{**r.to_json(), "detail": detail} for r, detail in rows], indent=1))
        return
    table = Table("job", "backend", "experiment", "folds", "state", "detail", "updated")
    for r, detail in rows:
        style = {"complete": "green", "failed": "red", "incomplete": "yellow", "cancelled": "dim"}.get(r.state, "")
        table.add_row(
            r.job_id,
            r.backend,
            r.experiment,
            ",".join(map(str, r.folds)) + (f" seed {r.seed}" if r.seed is not None else ""),
            f"[{style}]{r.state}[/]" if style else r.state,
            detail,
            r.updated_at.replace("+00:00", "Z"),
        )
    console.print(table)
    for r, tail in tails:
        console.print(f"[bold]--- {r.job_id} failed; log tail[/] (all of it: `molremote logs --job {r.job_id}`)")
        console.print(tail, markup=False, highlight=False, soft_wrap=True)
        if r.backend in ("ssh", "slurm"):
            console.print(
                f"to continue from the last checkpoint: `molremote remote -e {r.experiment_id} --{r.backend} ... "
                f"--resume {r.job_id}` (the same options)",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )


@app.command()
def logs(
    exp_id: JobExperiment = None,
    job_id: JobId = None,
    follow: bool = typer.Option(False, "-f", "--follow", help="Keep following until the job ends."),
) -> None:
    """The log of a job (Kaggle: once the session has ended; Kaggle's API serves no live log)."""
    from .. import jobs
    from ..backends import backend_for

    rec = jobs.find(exp_id, job_id, active=follow)
    for chunk in backend_for(rec).logs(rec, follow=follow):
        sys.stdout.write(chunk)
        sys.stdout.flush()


@app.command()
def cancel(
    exp_id: JobExperiment = None,
    job_id: JobId = None,
) -> None:
    """Stop a job (the trainer checkpoints first where the backend allows it)."""
    from .. import jobs
    from ..backends import backend_for

    rec = jobs.find(exp_id, job_id, active=True)
    if rec.state in jobs.TERMINAL:
        err_console.print(f"job {rec.job_id} already ended ({rec.state}); nothing to cancel")
        return
    backend_for(rec).cancel(rec)
    jobs.update(rec, state="cancelled", detail="cancelled by `molremote cancel`")
    console.print(f"cancelled {rec.job_id}")


@app.command()
def fetch(
    exp_id: JobExperiment = None,
    job_id: JobId = None,
) -> None:
    """Copy a job's run folders from where it ran into the local runs folder (without a store; with one,
    `molremote pull` brings them from the store)."""
    from .. import jobs
    from ..backends import fetch_runs
    from ..project import runs_dir

    rec = jobs.find(exp_id, job_id)
    for line in fetch_runs(rec, runs_dir()):
        console.print(f"fetched {rec.job_id}: {line}", markup=False)
