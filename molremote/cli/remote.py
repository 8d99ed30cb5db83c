"""`molremote remote -e N --kaggle | --ssh HOST | --slurm` and `molremote data push/prepare`.

Options in, text out: `molremote.launching` does the work for every backend. Never imports torch; the kaggle
client is imported only when a command talks to Kaggle.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

from ..errors import UsageError
from ._app import app, console, err_console
from ._options import AllFolds, Experiment, Fold, GPUs, KaggleAccount, MaxTime, Seed, Sets

B64_LINE = re.compile(r'^\s+"[A-Za-z0-9+/=]{8,}",$')


def _print_rendered(name: str, text: str) -> None:
    """Print one rendered file; an embedded code bundle's base64 lines are summarised, not printed."""
    console.print(f"[bold]--- {name}[/] ({len(text):,} bytes)")
    lines, skipped = [], 0
    for line in text.splitlines():
        if B64_LINE.match(line):
            skipped += 1
            continue
        if skipped:
            lines.append(f"    # ... {skipped} lines of base64 (the code bundle) ...")
            skipped = 0
        lines.append(line)
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


@app.command()
def remote(
    exp_id: Experiment,
    kaggle: bool = typer.Option(False, "--kaggle", help="Run as a Kaggle kernel (one kernel per fold)."),
    fold: Fold = None,
    all_folds: AllFolds = False,
    seed: Seed = None,
    accelerator: str | None = typer.Option(
        None,
        "--accelerator",
        help="Kaggle machine shape: NvidiaTeslaT4, NvidiaL4, NvidiaH100, "
        "TpuV38, ... or none (default: exp.backend.kaggle).",
    ),
    account: KaggleAccount = None,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only render what would run and print it."),
    chain: bool = typer.Option(False, "--chain", help="Push session after session until the run completes."),
    max_sessions: int | None = typer.Option(
        None, "--max-sessions", help="Chain at most this many sessions (default: exp.backend.kaggle)."
    ),
    require_clean: bool = typer.Option(False, "--require-clean", help="Refuse to ship uncommitted changes."),
    sets: Sets = None,
    ssh: str | None = typer.Option(
        None, "--ssh", help="Run on HOST over ssh: an ssh destination or a host named in molremote.toml."
    ),
    slurm: bool = typer.Option(False, "--slurm", help="Submit to SLURM (sbatch here, or on --cluster's login host)."),
    cluster: str | None = typer.Option(None, "--cluster", help="SLURM cluster named in molremote.toml."),
    gpus: GPUs = None,
    nodes: int | None = typer.Option(
        None,
        "--nodes",
        help="SLURM nodes per fold (DDP: srun starts one rank per process; default: exp.backend.slurm.nodes).",
    ),
    max_time: MaxTime = None,
    venv: str | None = typer.Option(None, "--venv", help="Existing venv on the host (nothing installed)."),
    python: str | None = typer.Option(None, "--python", help="Interpreter on the host that creates the venv."),
    remote_root: str | None = typer.Option(None, "--remote-root", help="Working folder on the host."),
    ssh_config: str | None = typer.Option(None, "--ssh-config", help="ssh -F file (default ~/.ssh/config)."),
    partition: str | None = typer.Option(None, "--partition"),
    slurm_account: str | None = typer.Option(None, "--slurm-account"),
    time_limit: str | None = typer.Option(None, "--time", help="SLURM time limit [D-]HH:MM:SS."),
    resume: str | None = typer.Option(
        None,
        "--resume",
        metavar="JOB",
        help="ssh/slurm: continue an ended job's unfinished runs (moved into the new job, resumed from their "
        "last checkpoint; no store needed).",
    ),
) -> None:
    """Train an experiment elsewhere: a Kaggle kernel (--kaggle), an ssh host (--ssh HOST) or SLURM (--slurm)."""
    from .. import launching

    if sum([kaggle, ssh is not None, slurm]) != 1:
        raise UsageError("choose exactly one place to run: --kaggle, --ssh HOST or --slurm [--cluster NAME]")
    kind = "kaggle" if kaggle else "ssh" if ssh is not None else "slurm"
    overrides = launching.LaunchOverrides(
        host=ssh,
        cluster=cluster,
        gpus=gpus,
        nodes=nodes,
        max_time=max_time,
        venv=venv,
        python=python,
        remote_root=remote_root,
        ssh_config=ssh_config,
        partition=partition,
        slurm_account=slurm_account,
        time=time_limit,
        account=account,
        accelerator=accelerator,
        resume=resume,
    )
    plan = launching.prepare(
        exp_id,
        kind,
        fold=fold,
        all_folds=all_folds,
        seed=seed,
        sets=sets,
        overrides=overrides,
        require_clean=require_clean,
        for_dry_run=dry_run,
    )
    for note in plan.notes:
        err_console.print(note, highlight=False)
    b = plan.bundle
    console.print(
        f"code bundle {b.sha256[:16]}: commit {(b.commit or '-')[:12]}"
        f"{' + uncommitted changes' if b.dirty else ''}, {b.size / 1e6:.1f} MB"
    )
    exp = plan.experiment
    if dry_run:
        for job, files in launching.render(plan):
            console.print(
                f"[bold]job {job.job_id}[/] ({kind}, fold{'s' if len(job.folds) > 1 else ''} "
                f"{','.join(map(str, job.folds))})"
            )
            if kind == "kaggle":
                from ..backends.kaggle import KaggleBackend

                assert isinstance(plan.backend, KaggleBackend)  # kind "kaggle" is the Kaggle backend
                console.print(
                    f"kernel folder {plan.backend.kernel_folder(job)} (`kaggle kernels push -p` takes it)",
                    highlight=False,
                    soft_wrap=True,
                )
            for name, text in files.items():
                _print_rendered(name, text)
        return
    if chain:
        for job, state, recs in launching.chain(plan, max_sessions, echo=lambda m: console.print(m, highlight=False)):
            console.print(
                f"[bold green]{exp.name} fold {job.folds[0]}: {state}[/] after {len(recs)} session(s); "
                f"`molremote pull -e {exp.id}` brings it here"
            )
        return
    follow = f"follow with `molremote status -e {exp.id}` and `molremote logs -e {exp.id} -f`"
    for rec in launching.submit(plan):
        if kind == "kaggle":
            console.print(
                f"pushed {rec.handle['kernel']} version {rec.handle.get('version')}: {rec.handle['url']}"
                f"\n  job {rec.job_id}; {follow}",
                highlight=False,
            )
        else:
            console.print(
                f"launched {kind} job {rec.job_id}: {rec.detail}\n  {follow}; results: `molremote pull -e {exp.id}`",
                highlight=False,
            )


# ------------------------------------------------------------------------------------------------ data
data_app = typer.Typer(help="Prepared data as private Kaggle datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("push")
def data_push(
    task: str = typer.Option(..., "--task", help="Task the data is for (belka, text2mol, ...)."),
    path: Path = typer.Option(..., "--path", help="Folder to upload (sub-folders included)."),
    slug: str | None = typer.Option(None, "--slug", help="Dataset slug (default: molremote-<task>-data)."),
    title: str | None = typer.Option(None, "--title", help="Dataset title (default: the slug)."),
    account: KaggleAccount = None,
    message: str = typer.Option("molremote data push", "--message", "-m", help="Version notes."),
) -> None:
    """Upload prepared data as a private Kaggle dataset (created, or a new version when it exists)."""
    from ..backends.kaggle import push_dataset

    ref, created = push_dataset(task, path, slug=slug, title=title, account=account, notes=message)
    console.print(
        f"{'created' if created else 'new version of'} private dataset {ref}\n"
        f'  use it in an experiment: data={{"kaggle_datasets": ["{ref}"], "root": "data/{task}"}}',
        highlight=False,
    )


@data_app.command("prepare")
def data_prepare(
    task: str = typer.Option(..., "--task", help="Task whose data to prepare."),
    input: Path = typer.Option(
        ..., "--input", help="The competition's train.parquet, or a folder holding train.parquet (and test.parquet)."
    ),
    out: Path = typer.Option(..., "--out", help="Prepared folder (an experiment's data.root)."),
    test: Path | None = typer.Option(None, "--test", help="test.parquet (default: next to --input)."),
    on_unknown: str = typer.Option(
        "error",
        "--on-unknown",
        help="error: refuse unknown SMILES characters (row id + character); skip: map them to padding.",
    ),
    batch_rows: int | None = typer.Option(None, "--batch-rows", help="Parquet rows per record batch."),
    restart: bool = typer.Option(False, "--restart", help="Ignore the progress file and start over."),
) -> None:
    """Prepare a task's raw files for training (BELKA: stream the parquet into memory-mapped arrays; resumable)."""
    from ..tasks import data_preparer

    data_preparer(task)(
        input,
        out,
        test=test,
        on_unknown=on_unknown,
        batch_rows=batch_rows,
        restart=restart,
        say=console.print,
        warn=err_console.print,
    )
