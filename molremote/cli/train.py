"""`molremote train`: the only command that imports torch (when it runs, not at start-up)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NoReturn

import typer

from ..errors import ExperimentError
from ._app import app, err_console
from ._options import AllFolds, ExperimentOpt, Fold, MaxTime, Seed, Sets


def resolve_cli_experiment(exp_id: int | None, experiment_json: Path | None, sets: list[str] | None):
    from ..experiments import Experiment, Registry, apply_overrides

    if (exp_id is None) == (experiment_json is None):
        raise ExperimentError("give exactly one of -e ID or --experiment-json FILE")
    if experiment_json is not None:
        try:
            data = json.loads(Path(experiment_json).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ExperimentError(f"cannot read resolved experiment JSON: {e}", file=str(experiment_json)) from None
        exp = Experiment.from_json(data)
    else:
        assert exp_id is not None  # exactly one of the two, checked above
        exp = Registry().resolve(exp_id)
    return apply_overrides(exp, sets)


@app.command()
def train(
    exp_id: ExperimentOpt = None,
    fold: Fold = None,
    all_folds: AllFolds = False,
    seed: Seed = None,
    max_time: MaxTime = None,
    sets: Sets = None,
    restart: bool = typer.Option(False, "--restart", help="Train a finished run again (the old one is kept aside)."),
    experiment_json: Path | None = typer.Option(
        None, "--experiment-json", help="Resolved experiment JSON (remote machines)."
    ),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar (default: when a terminal)."
    ),
    gpus: int = typer.Option(
        1, "--gpus", help="Processes (one per GPU) under torchrun with DDP; on a CPU-only machine, gloo processes."
    ),
    wait: bool = typer.Option(
        False, "--wait", help="When another process holds the run, wait for it instead of exiting 9."
    ),
    repair: bool = typer.Option(
        False,
        "--repair",
        help="Keep a damaged manifest.json aside (manifest.json.corrupt-<time>) and start a new record.",
    ),
) -> None:
    """Train one fold (or all folds) of an experiment here, each of its seeds when it lists several. Prints the
    run folder as its last line."""
    from ..timefmt import parse_duration

    exp = resolve_cli_experiment(exp_id, experiment_json, sets)
    try:
        max_time_s = parse_duration(max_time) if max_time else None
    except ValueError as e:
        raise ExperimentError(str(e), field="--max-time") from None
    units = exp.select_runs(fold, all_folds, seed)  # (fold, seed) of every run meant; seed None: one per fold
    if gpus > 1 and "WORLD_SIZE" not in os.environ:
        from ..training.supervisor import run_under_torchrun  # torch-free: torchrun runs as a child

        _exit(run_under_torchrun(gpus, exp, units, echo=lambda m: err_console.print(m, highlight=False)))
    from ..training.early import catch

    catch()  # a USR1 from here on (SLURM's time-limit warning) stops the trainer at its first check
    store, settings = _store_and_settings()
    from ..training.launch import train_fold  # imports torch

    code, last = 0, None
    for f, s in units:
        seed_note = f"  seed {s}" if s is not None else ""
        err_console.print(f"[bold]{exp.name}[/] fold {f}{seed_note}  hash {exp.config_hash}")
        res = train_fold(
            exp.with_seed(s),
            f,
            sets=sets,
            max_time_s=max_time_s,
            restart=restart,
            progress=progress,
            store=store,
            settings=settings,
            wait=wait,
            repair=repair,
        )
        last = res.run_dir
        if res.exit_code:
            code = res.exit_code
            break
    print(last)
    sys.stdout.flush()
    _exit(code)


def _exit(code: int) -> NoReturn:
    if code == 0:  # complete: SLURM's USR1 coming while Python shuts down must not turn exit 0 into 138
        from ..training.early import ignore_late

        ignore_late()
    raise typer.Exit(code)


def _store_and_settings():
    """The configured store (None: runs stay local) and the settings."""
    from ..settings import load_settings
    from ..store import configured_store

    return configured_store(), load_settings()
