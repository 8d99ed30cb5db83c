"""One launch path for every backend: (experiment, folds, backend name, settings, overrides) -> jobs.

    prepare(...) -> Launch     resolve the experiment, pick and check the folds, build the backend's typed
                               options from molremote.toml + the command line, bundle the code, make the jobs
    render(launch)             what `--dry-run` prints: backend.render(job) for every job, any backend
    submit(launch)             backend.launch(job) for every job -> job records
    chain(launch, ...)         Kaggle: push session after session until each fold's run completes

Kaggle runs one kernel per fold (one job per fold; per (fold, seed) for an experiment listing several
`training.seeds`, each kernel's trainer given `--seed`); ssh and slurm run all folds in one job (one after the
other on an ssh host, one array task per fold on SLURM), each fold's trainer training every seed of the fold in
turn (each (fold, seed) its own resumable run), or the one `--seed` given. The CLI (`molremote remote`) only
parses options and prints. torch-free.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backends import BACKENDS
from .errors import BackendError, ExperimentError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from .backends.base import Backend, Job
    from .bundle import BundleInfo
    from .experiments import Experiment
    from .jobs import JobRecord
    from .settings import Settings

BACKEND_NAMES = tuple(sorted(BACKENDS))  # kaggle, slurm, ssh


@dataclass(frozen=True)
class LaunchOverrides:
    """What the command line may set; None leaves it to molremote.toml, then to the experiment."""

    host: str | None = None  # ssh: a destination or a host named in [ssh.hosts.*]
    cluster: str | None = None  # slurm: a cluster named in [slurm.clusters.*]
    gpus: int | None = None  # processes (GPUs) per fold; per node on SLURM
    nodes: int | None = None  # slurm only
    max_time: str | None = None  # trainer deadline on the remote side, e.g. 11h30m
    venv: str | None = None
    python: str | None = None
    remote_root: str | None = None
    ssh_config: str | None = None
    partition: str | None = None
    slurm_account: str | None = None
    time: str | None = None  # SLURM time limit
    account: str | None = None  # Kaggle account from molremote.toml
    accelerator: str | None = None  # Kaggle machine shape
    resume: str | None = None  # ssh/slurm: an earlier job whose unfinished runs this launch takes over


@dataclass
class Launch:
    """A prepared launch: the backend with its options, and the jobs it will run."""

    experiment: Experiment
    backend_name: str
    backend: Backend
    jobs: list[Job]
    bundle: BundleInfo
    notes: list[str] = field(default_factory=list)  # things the user should know (printed by the CLI)


def _relaunch(exp: Experiment, backend: str, fold: int, sets: list[str], seed: int | None = None) -> str:
    return (
        f"molremote remote -e {exp.id} --{backend} --fold {fold}"
        + (f" --seed {seed}" if seed is not None else "")
        + "".join(f" --set {s}" for s in sets)
    )


def backend_options(
    name: str, exp: Experiment, settings: Settings, o: LaunchOverrides, notes: list[str] | None = None
) -> tuple[dict[str, Any], int]:
    """(options for the backend named `name`, GPUs per fold) from molremote.toml and the overrides; the
    backend's typed Options model checks them. Refusals name the option and the value."""
    notes = [] if notes is None else notes
    if o.nodes is not None and (name != "slurm" or o.nodes < 1):
        raise UsageError(f"--nodes {o.nodes}: " + ("needs --slurm" if name != "slurm" else "must be at least 1"))
    opts: dict[str, Any] = {}
    gpus = o.gpus
    if name == "kaggle":
        store = os.environ.get("MOLREMOTE_KAGGLE_STORE") or settings.store.url
        if store and not store.startswith("hf://") and not os.environ.get("MOLREMOTE_KAGGLE_STORE"):
            notes.append(
                f"note: the store {store} is not reachable from Kaggle; results stay in the kernel "
                "output (bring them back with `molremote fetch`). Use an hf:// store to chain sessions."
            )
            store = None
        opts.update(
            account=o.account,
            accelerator=o.accelerator,
            store=store,
            wandb_mode=settings.wandb.mode,
            wandb_project=settings.wandb.project,
            wandb_entity=settings.wandb.entity,
        )
        if os.environ.get("MOLREMOTE_KAGGLE_POLL_S"):  # how often --chain/--wait ask Kaggle (default 30 s)
            try:
                opts["poll_s"] = float(os.environ["MOLREMOTE_KAGGLE_POLL_S"])
            except ValueError:
                raise UsageError(
                    f"MOLREMOTE_KAGGLE_POLL_S={os.environ['MOLREMOTE_KAGGLE_POLL_S']!r}: expected seconds, e.g. 30"
                ) from None
        return opts, 0
    if name == "ssh":
        named = settings.ssh.hosts.get(o.host or "")
        opts.update(host=named.destination if named else o.host)
        if named:
            opts.update(remote_root=named.workdir, python=named.python, venv=named.venv)
            gpus = gpus if gpus is not None else (named.gpus or None)
        gpus = gpus if gpus is not None else (exp.backend.ssh.gpus or None)
    elif name == "slurm":
        if o.cluster is not None and o.cluster not in settings.slurm.clusters:
            known = ", ".join(sorted(settings.slurm.clusters)) or "none configured"
            raise UsageError(
                f"--cluster: unknown SLURM cluster {o.cluster!r} (molremote.toml [slurm.clusters.*]: {known})"
            )
        c = settings.slurm.clusters.get(o.cluster or "")
        if c:
            opts.update(
                host=None if c.login == "local" else c.login,
                remote_root=c.workdir,
                python=c.python,
                partition=c.partition,
                account=c.account,
                sbatch_extra=list(c.extra_sbatch),
            )
        opts.update(
            {
                k: v
                for k, v in (
                    ("partition", o.partition),
                    ("account", o.slurm_account),
                    ("time", o.time),
                    ("nodes", o.nodes),
                )
                if v
            }
        )
    else:
        raise BackendError(f"unknown backend '{name}' (known: {', '.join(BACKEND_NAMES)})")
    opts.update(
        {
            k: v
            for k, v in (
                ("venv", o.venv),
                ("python", o.python),
                ("remote_root", o.remote_root),
                ("ssh_config", o.ssh_config),
            )
            if v
        }
    )
    return opts, gpus or 0


def prepare(
    exp_id: int,
    backend: str,
    *,
    fold: int | None = None,
    all_folds: bool = False,
    seed: int | None = None,
    sets: list[str] | tuple[str, ...] | None = (),
    overrides: LaunchOverrides = LaunchOverrides(),
    settings: Settings | None = None,
    require_clean: bool = False,
    root: Path | None = None,
    for_dry_run: bool = False,
) -> Launch:
    """Everything before anything leaves this machine: checks first (experiment, folds, options), then the
    code bundle, then the jobs."""
    from . import jobs as job_records
    from .backends import get_backend
    from .backends.base import Job
    from .bundle import make_bundle
    from .experiments import Registry, apply_overrides
    from .project import project_root
    from .settings import load_settings
    from .timefmt import parse_duration

    if backend not in BACKEND_NAMES:
        raise BackendError(f"unknown backend '{backend}' (known: {', '.join(BACKEND_NAMES)})")
    sets = list(sets or ())
    exp = apply_overrides(Registry().resolve(exp_id), sets)
    units = exp.select_runs(fold, all_folds, seed)  # (fold, seed) runs; seed None: one run per fold
    folds = sorted({f for f, _ in units})
    if overrides.max_time:
        try:
            parse_duration(overrides.max_time)
        except ValueError as e:
            raise ExperimentError(str(e), field="--max-time") from None
    settings = settings or load_settings()
    notes: list[str] = []
    opts, gpus = backend_options(backend, exp, settings, overrides, notes)
    if backend == "kaggle" and for_dry_run and not opts.get("username"):
        from .backends.kaggle_api import resolve_credentials

        try:
            opts["username"] = resolve_credentials(overrides.account).username
        except BackendError:
            pass  # rendered with a placeholder owner; pushing needs credentials anyway
    be = get_backend(backend, **opts)
    root = root or project_root()
    bundle = make_bundle(root, root / ".molremote" / "bundles", require_clean=require_clean)
    train_args = ["--max-time", overrides.max_time] if overrides.max_time else []
    base_id = job_records.new_job_id(exp.name, backend)
    if backend == "kaggle":  # one kernel per fold, per (fold, seed) when the experiment lists several seeds
        job_list = [
            Job(
                job_id=f"{base_id}-f{f}" + (f"-s{s}" if s is not None else ""),
                experiment=exp.to_json(),
                folds=[f],
                bundle=bundle,
                train_args=train_args + (["--seed", str(s)] if s is not None else []),
                options={"relaunch": _relaunch(exp, backend, f, sets, s)},
                seed=s,
            )
            for f, s in units
        ]
    else:  # each fold's trainer trains the fold's seeds in turn (only `seed` when one is given)
        seed_args = ["--seed", str(seed)] if seed is not None else []
        job_list = [
            Job(
                job_id=base_id,
                experiment=exp.to_json(),
                folds=folds,
                bundle=bundle,
                gpus=gpus,
                train_args=train_args + seed_args,
            )
        ]
    if overrides.resume:
        resumed = _resume_job(overrides.resume, exp, backend, be, check_state=not for_dry_run)
        for job in job_list:
            job.options["resume_job"] = resumed.job_id
        notes.append(
            f"resuming job {resumed.job_id}: each fold's run folder moves into the new job and continues from its "
            "last checkpoint"
        )
    return Launch(exp, backend, be, job_list, bundle, notes)


def _resume_job(job_id: str, exp: Experiment, backend: str, be: Backend, check_state: bool) -> JobRecord:
    """`--resume JOB`: the earlier job must be this experiment's (same configuration) on the same backend, host
    and remote root (its run folders are moved on the host, never copied between machines), and must have
    ended."""
    from . import jobs as job_records

    if backend not in ("ssh", "slurm"):
        raise UsageError(f"--resume {job_id}: for --ssh and --slurm jobs (Kaggle continues with --chain)")
    rec = job_records.load(job_id)
    where = f"--resume {job_id}: that job"
    if rec.backend != backend:
        raise UsageError(f"{where} ran on {rec.backend}, not {backend}")
    if rec.experiment_id != exp.id or rec.config_hash != exp.config_hash:
        raise UsageError(
            f"{where} trained {rec.experiment} (config {rec.config_hash}), this launch {exp.name} "
            f"(config {exp.config_hash}): resume with the same experiment and --set values"
        )
    for opt in ("host", "remote_root"):
        was, now = rec.options.get(opt), getattr(be.options, opt)
        if was != now:
            raise UsageError(f"{where} used {opt} {was!r}, this launch {now!r}: its run folders are on the other one")
    if check_state:
        st = be.status(rec)
        if st.state in ("pending", "running"):
            raise UsageError(f"{where} is still {st.state}: stop it first (`molremote cancel --job {job_id}`)")
    return rec


def render(launch: Launch) -> list[tuple[Job, dict[str, str]]]:
    """What would run: the rendered files of every job (pure for ssh and slurm). For Kaggle the kernel folder
    is also written, as `kaggle kernels push -p FOLDER` takes it."""
    out = []
    for job in launch.jobs:
        files = launch.backend.render(job)
        if launch.backend_name == "kaggle":
            launch.backend.write_folder(job, launch.backend.kernel_folder(job), files)  # type: ignore[attr-defined]
        out.append((job, files))
    return out


def submit(launch: Launch) -> list[JobRecord]:
    """Start every job; each backend saves its job record (for `molremote status`)."""
    return [launch.backend.launch(job) for job in launch.jobs]


def chain(
    launch: Launch, max_sessions: int | None = None, echo: Callable[[str], None] = print
) -> list[tuple[Job, str, list[JobRecord]]]:
    """Kaggle: for each fold, push session after session until its run completes (see backends.kaggle.chain)."""
    from .backends.kaggle import chain as kaggle_chain

    if launch.backend_name != "kaggle":
        raise BackendError(
            f"--chain is for Kaggle kernels; {launch.backend_name} jobs resume by themselves "
            "(SLURM requeues on exit 75; launch an ssh job again to continue)"
        )
    n = max_sessions or launch.experiment.backend.kaggle.max_sessions
    out = []
    for job in launch.jobs:
        state, recs = kaggle_chain(launch.backend, job, max_sessions=n, echo=echo)  # type: ignore[arg-type]
        out.append((job, state, recs))
    return out


__all__ = ["BACKEND_NAMES", "Launch", "LaunchOverrides", "backend_options", "chain", "prepare", "render", "submit"]
