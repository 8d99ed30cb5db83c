"""`molremote remote -e N --kaggle` (render, push, chain Kaggle kernels) and `molremote data push`.

Never imports torch; the kaggle client is imported only when a command talks to Kaggle.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import BackendError, ExperimentError
from ._app import app, console, err_console

B64_LINE = re.compile(r'^\s+"[A-Za-z0-9+/=]{8,}",$')


def _show_folder(folder: Path) -> None:
    """Print a rendered kernel folder; the embedded bundle's base64 lines are summarised, not printed."""
    console.print(f"[bold]{folder}[/]")
    for p in sorted(folder.iterdir()):
        console.print(f"[bold]--- {p.name}[/] ({p.stat().st_size:,} bytes)")
        lines, skipped = [], 0
        for line in p.read_text().splitlines():
            if B64_LINE.match(line):
                skipped += 1
                continue
            if skipped:
                lines.append(f"    # ... {skipped} lines of base64 (the code bundle) ...")
                skipped = 0
            lines.append(line)
        console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def kaggle_options(exp: Any, *, account: Optional[str], accelerator: Optional[str], settings: Any,
                   relaunch: str) -> dict[str, Any]:
    """Backend options from the command line and molremote.toml. The store goes to the kernel only when the
    kernel can reach it (a Hub repo); `MOLREMOTE_KAGGLE_STORE` names another store for the kernel."""
    import os

    store = os.environ.get("MOLREMOTE_KAGGLE_STORE") or settings.store.url
    if store and not store.startswith("hf://") and not os.environ.get("MOLREMOTE_KAGGLE_STORE"):
        err_console.print(f"note: the store {store} is not reachable from Kaggle; results stay in the kernel "
                          "output (bring them back with `molremote fetch`). Use an hf:// store to chain sessions.")
        store = None
    return {"account": account, "accelerator": accelerator, "store": store, "wandb_mode": settings.wandb.mode,
            "wandb_project": settings.wandb.project, "wandb_entity": settings.wandb.entity, "relaunch": relaunch}


@app.command()
def remote(
    exp_id: int = typer.Option(..., "-e", "--experiment", help="Experiment id."),
    kaggle: bool = typer.Option(False, "--kaggle", help="Run as a Kaggle kernel (one kernel per fold)."),
    fold: Optional[int] = typer.Option(None, "--fold", "-f", help="Fold (default: the experiment's)."),
    all_folds: bool = typer.Option(False, "--all-folds", help="Every fold the experiment lists."),
    accelerator: Optional[str] = typer.Option(None, "--accelerator",
                                              help="Kaggle machine shape: NvidiaTeslaT4, NvidiaL4, NvidiaH100, "
                                                   "TpuV38, ... or none (default: exp.backend.kaggle)."),
    account: Optional[str] = typer.Option(None, "--account", help="Kaggle account from molremote.toml."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only render the kernel folder and print it."),
    chain: bool = typer.Option(False, "--chain", help="Push session after session until the run completes."),
    max_sessions: Optional[int] = typer.Option(None, "--max-sessions",
                                               help="Chain at most this many sessions (default: exp.backend.kaggle)."),
    require_clean: bool = typer.Option(False, "--require-clean", help="Refuse to ship uncommitted changes."),
    sets: list[str] = typer.Option([], "--set", help="key.path=value override of the experiment."),
    ssh: Optional[str] = typer.Option(None, "--ssh", help="Run on HOST over ssh: an ssh destination or a host named in molremote.toml."),
    slurm: bool = typer.Option(False, "--slurm", help="Submit to SLURM (sbatch here, or on --cluster's login host)."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="SLURM cluster named in molremote.toml."),
    gpus: Optional[int] = typer.Option(None, "--gpus", help="GPUs (processes under torchrun/DDP) per fold; per node on SLURM."),
    nodes: Optional[int] = typer.Option(None, "--nodes", help="SLURM nodes per fold (DDP across nodes with srun + torchrun; default: exp.backend.slurm.nodes)."),
    max_time: Optional[str] = typer.Option(None, "--max-time", help="Trainer deadline on the remote side, e.g. 11h30m."),
    venv: Optional[str] = typer.Option(None, "--venv", help="Existing venv on the host (nothing installed)."),
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter on the host that creates the venv."),
    remote_root: Optional[str] = typer.Option(None, "--remote-root", help="Working folder on the host."),
    ssh_config: Optional[str] = typer.Option(None, "--ssh-config", help="ssh -F file (default ~/.ssh/config)."),
    partition: Optional[str] = typer.Option(None, "--partition"),
    slurm_account: Optional[str] = typer.Option(None, "--slurm-account"),
    time_limit: Optional[str] = typer.Option(None, "--time", help="SLURM time limit [D-]HH:MM:SS."),
) -> None:
    """Train an experiment elsewhere: a Kaggle kernel (--kaggle), an ssh host (--ssh HOST) or SLURM (--slurm)."""
    if sum([kaggle, ssh is not None, slurm]) != 1:
        raise BackendError("choose exactly one place to run: --kaggle, --ssh HOST or --slurm [--cluster NAME]")
    if kaggle and nodes is not None:
        raise BackendError("--nodes needs --slurm (a Kaggle kernel is one machine)")
    if not kaggle:
        return _remote_shell("ssh" if ssh else "slurm", exp_id=exp_id, fold=fold, all_folds=all_folds, sets=sets,
                             dry_run=dry_run, require_clean=require_clean, host=ssh, cluster=cluster, gpus=gpus,
                             max_time=max_time, venv=venv, python=python, remote_root=remote_root,
                             ssh_config=ssh_config, partition=partition, account=slurm_account, time=time_limit,
                             nodes=nodes)
    from .. import jobs
    from ..backends.base import Job
    from ..backends.kaggle import KaggleBackend, chain as run_chain, kernel_slug
    from ..bundle import make_bundle
    from ..experiments import Registry, apply_overrides
    from ..project import project_root
    from ..settings import load_settings

    exp = apply_overrides(Registry().resolve(exp_id), sets)
    folds = exp.fold_list() if all_folds else [exp.folds.default if fold is None else fold]
    for f in folds:
        if not 0 <= f < exp.folds.n_folds:
            raise ExperimentError(f"fold {f} out of range 0..{exp.folds.n_folds - 1}", field="--fold")
    settings = load_settings()
    root = project_root()
    bundle = make_bundle(root, root / ".molremote" / "bundles", require_clean=require_clean)
    console.print(f"code bundle {bundle.sha256[:16]}: commit {(bundle.commit or '-')[:12]}"
                  f"{' + uncommitted changes' if bundle.dirty else ''}, {bundle.size / 1e6:.1f} MB")
    extra = "".join(f" --set {s}" for s in sets)
    for f in folds:
        relaunch = f"molremote remote -e {exp.id} --kaggle --fold {f}{extra}"
        opts = kaggle_options(exp, account=account, accelerator=accelerator, settings=settings, relaunch=relaunch)
        if dry_run:
            from ..backends.kaggle_api import resolve_credentials

            try:
                opts["username"] = resolve_credentials(account).username
            except BackendError:
                pass  # rendered with a placeholder owner; pushing needs credentials anyway
        backend = KaggleBackend(**opts)
        job = Job(job_id=f"{jobs.new_job_id(exp.name, 'kaggle')}-f{f}", experiment=exp.to_json(), folds=[f],
                  bundle=bundle)
        if dry_run:
            folder = backend.write_folder(job, root / ".molremote" / "kernels" / kernel_slug(job.experiment, f))
            _show_folder(folder)
            continue
        if chain:
            n = max_sessions or exp.backend.kaggle.max_sessions
            state, recs = run_chain(backend, job, max_sessions=n, echo=lambda m: console.print(m, highlight=False))
            console.print(f"[bold green]{exp.name} fold {f}: {state}[/] after {len(recs)} session(s); "
                          f"`molremote pull -e {exp.id}` brings it here")
            continue
        rec = backend.launch(job)
        console.print(f"pushed {rec.handle['kernel']} version {rec.handle.get('version')}: {rec.handle['url']}\n"
                      f"  job {rec.job_id}; follow with `molremote status -e {exp.id}` and "
                      f"`molremote logs -e {exp.id} -f`", highlight=False)


def _remote_shell(kind: str, *, exp_id: int, fold: Optional[int], all_folds: bool, sets: list[str], dry_run: bool,
                  require_clean: bool, host: Optional[str], cluster: Optional[str], gpus: Optional[int],
                  max_time: Optional[str], venv: Optional[str], python: Optional[str], remote_root: Optional[str],
                  ssh_config: Optional[str], partition: Optional[str], account: Optional[str],
                  time: Optional[str], nodes: Optional[int] = None) -> None:
    """`remote --ssh HOST` / `remote --slurm`: bundle, render, launch through the ssh or slurm backend."""
    from .. import jobs
    from ..backends import get_backend
    from ..backends.base import Job
    from ..bundle import make_bundle
    from ..experiments import Registry, apply_overrides
    from ..project import project_root
    from ..settings import load_settings
    from ..timefmt import parse_duration

    exp = apply_overrides(Registry().resolve(exp_id), sets)
    folds = exp.fold_list() if all_folds else [exp.folds.default if fold is None else fold]
    for f in folds:
        if not 0 <= f < exp.folds.n_folds:
            raise ExperimentError(f"fold {f} out of range 0..{exp.folds.n_folds - 1}", field="--fold")
    if max_time:
        try:
            parse_duration(max_time)
        except ValueError as e:
            raise ExperimentError(str(e), field="--max-time") from None
    settings = load_settings()
    opts: dict[str, Any] = {}
    if nodes is not None and (kind != "slurm" or nodes < 1):
        raise BackendError(f"--nodes {nodes}: " + ("needs --slurm" if kind != "slurm" else "must be at least 1"))
    if kind == "ssh":
        named = settings.ssh.hosts.get(host or "")
        opts.update(host=named.destination if named else host)
        if named:
            opts.update(remote_root=named.workdir, python=named.python, venv=named.venv)
            gpus = gpus if gpus is not None else (named.gpus or None)
        gpus = gpus if gpus is not None else (exp.backend.ssh.gpus or None)
    else:
        if cluster is not None and cluster not in settings.slurm.clusters:
            known = ", ".join(sorted(settings.slurm.clusters)) or "none configured"
            raise BackendError(f"unknown SLURM cluster {cluster!r} (molremote.toml [slurm.clusters.*]: {known})")
        c = settings.slurm.clusters.get(cluster or "")
        if c:
            opts.update(host=None if c.login == "local" else c.login, remote_root=c.workdir, python=c.python,
                        partition=c.partition, account=c.account, sbatch_extra=list(c.extra_sbatch))
        opts.update({k: v for k, v in (("partition", partition), ("account", account), ("time", time),
                                       ("nodes", nodes)) if v})
    opts.update({k: v for k, v in (("venv", venv), ("python", python), ("remote_root", remote_root),
                                   ("ssh_config", ssh_config)) if v})
    backend = get_backend(kind, **opts)
    root = project_root()
    bundle = make_bundle(root, root / ".molremote" / "bundles", require_clean=require_clean)
    console.print(f"code bundle {bundle.sha256[:16]}: commit {(bundle.commit or '-')[:12]}"
                  f"{' + uncommitted changes' if bundle.dirty else ''}, {bundle.size / 1e6:.1f} MB")
    job = Job(job_id=jobs.new_job_id(exp.name, kind), experiment=exp.to_json(), folds=folds, bundle=bundle,
              gpus=gpus or 0, train_args=["--max-time", max_time] if max_time else [])
    if dry_run:
        for name, text in backend.render(job).items():
            console.print(f"[bold]--- {name}[/] ({len(text):,} bytes)")
            console.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    rec = backend.launch(job)
    console.print(f"launched {kind} job {rec.job_id}: {rec.detail}\n  follow with `molremote status -e {exp.id}` "
                  f"and `molremote logs -e {exp.id} -f`; results: `molremote pull -e {exp.id}`", highlight=False)


# ------------------------------------------------------------------------------------------------ data
data_app = typer.Typer(help="Prepared data as private Kaggle datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("push")
def data_push(
    task: str = typer.Option(..., "--task", help="Task the data is for (belka, text2mol, ...)."),
    path: Path = typer.Option(..., "--path", help="Folder to upload (sub-folders included)."),
    slug: Optional[str] = typer.Option(None, "--slug", help="Dataset slug (default: molremote-<task>-data)."),
    title: Optional[str] = typer.Option(None, "--title", help="Dataset title (default: the slug)."),
    account: Optional[str] = typer.Option(None, "--account", help="Kaggle account from molremote.toml."),
    message: str = typer.Option("molremote data push", "--message", "-m", help="Version notes."),
) -> None:
    """Upload prepared data as a private Kaggle dataset (created, or a new version when it exists)."""
    from ..backends.kaggle import push_dataset

    ref, created = push_dataset(task, path, slug=slug, title=title, account=account, notes=message)
    console.print(f"{'created' if created else 'new version of'} private dataset {ref}\n"
                  f"  use it in an experiment: data={{\"kaggle_datasets\": [\"{ref}\"], \"root\": \"data/{task}\"}}",
                  highlight=False)


@data_app.command("prepare")
def data_prepare(
    task: str = typer.Option(..., "--task", help="Task whose data to prepare."),
    input: Path = typer.Option(..., "--input", help="The competition's train.parquet, or a folder holding train.parquet (and test.parquet)."),
    out: Path = typer.Option(..., "--out", help="Prepared folder (an experiment's data.root)."),
    test: Optional[Path] = typer.Option(None, "--test", help="test.parquet (default: next to --input)."),
    on_unknown: str = typer.Option("error", "--on-unknown", help="error: refuse unknown SMILES characters (row id + character); skip: map them to padding."),
    batch_rows: Optional[int] = typer.Option(None, "--batch-rows", help="Parquet rows per record batch."),
    restart: bool = typer.Option(False, "--restart", help="Ignore the progress file and start over."),
) -> None:
    """Prepare a task's raw files for training (BELKA: stream the parquet into memory-mapped arrays; resumable)."""
    from ..tasks import data_preparer

    data_preparer(task)(input, out, test=test, on_unknown=on_unknown, batch_rows=batch_rows, restart=restart,
                        say=console.print, warn=err_console.print)
