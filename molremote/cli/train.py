"""`molremote train`: the only command that imports torch (when it runs, not at start-up)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import ExperimentError
from ._app import app, err_console


def resolve_cli_experiment(exp_id: Optional[int], experiment_json: Optional[Path], sets: list[str]):
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
        exp = Registry().resolve(exp_id)
    return apply_overrides(exp, sets)


@app.command()
def train(
    exp_id: Optional[int] = typer.Option(None, "-e", "--experiment", help="Experiment id."),
    fold: Optional[int] = typer.Option(None, "--fold", "-f", help="Fold to train (default: the experiment's)."),
    all_folds: bool = typer.Option(False, "--all-folds", help="Train every fold listed by the experiment."),
    max_time: Optional[str] = typer.Option(None, "--max-time", help="Wall-clock limit, e.g. 11h30m: checkpoint and exit 75."),
    sets: list[str] = typer.Option([], "--set", help="key.path=value override (recorded in the manifest)."),
    restart: bool = typer.Option(False, "--restart", help="Train a finished run again (the old one is kept aside)."),
    experiment_json: Optional[Path] = typer.Option(None, "--experiment-json", help="Resolved experiment JSON (remote machines)."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: when a terminal)."),
    gpus: int = typer.Option(1, "--gpus", help="Processes (one per GPU) under torchrun with DDP; on a CPU-only machine, gloo processes."),
    wait: bool = typer.Option(False, "--wait", help="When another process holds the run, wait for it instead of exiting 9."),
    repair: bool = typer.Option(False, "--repair", help="Keep a damaged manifest.json aside (manifest.json.corrupt-<time>) and start a new record."),
) -> None:
    """Train one fold (or all folds) of an experiment here. Prints the run folder as its last line."""
    from ..timefmt import parse_duration

    exp = resolve_cli_experiment(exp_id, experiment_json, sets)
    try:
        max_time_s = parse_duration(max_time) if max_time else None
    except ValueError as e:
        raise ExperimentError(str(e), field="--max-time") from None
    folds = exp.fold_list() if all_folds else [exp.folds.default if fold is None else fold]
    for f in folds:
        if not 0 <= f < exp.folds.n_folds:
            raise ExperimentError(f"fold {f} out of range 0..{exp.folds.n_folds - 1}", field="--fold")
    if gpus > 1 and "WORLD_SIZE" not in os.environ:
        raise typer.Exit(_run_under_torchrun(gpus, exp, folds))
    store, settings = _store_and_settings()
    from ..training.launch import train_fold  # imports torch

    code, last = 0, None
    for f in folds:
        err_console.print(f"[bold]{exp.name}[/] fold {f}  hash {exp.config_hash}")
        res = train_fold(exp, f, sets=sets, max_time_s=max_time_s, restart=restart, progress=progress,
                         store=store, settings=settings, wait=wait, repair=repair)
        last = res.run_dir
        if res.exit_code:
            code = res.exit_code
            break
    print(last)
    sys.stdout.flush()
    raise typer.Exit(code)


def _run_under_torchrun(gpus: int, exp, folds: list[int]) -> int:
    """Re-run this same command under torchrun with `gpus` processes, then report like a single process:
    the exit code comes from the run's manifest (torchrun turns a worker's 75 into a generic failure)."""
    from ..runs import EXIT_INCOMPLETE, STATUS_COMPLETE, STATUS_INCOMPLETE, Run, run_path

    # the same entry point as this process: the console script (or any wrapper script) as a script,
    # `python -m molremote` as a module
    entry = sys.argv[0]
    target = ["-m", "molremote"] if entry.endswith("__main__.py") or not os.path.isfile(entry) else [entry]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
           *target, *sys.argv[1:]]
    err_console.print(f"[bold]torchrun[/] {gpus} processes: {' '.join(cmd[3:])}")
    rc = _call_forwarding_signals(cmd)
    last, code = None, rc
    for f in folds:
        last = run_path(exp, f)
        status = (Run(last).manifest() or {}).get("status")
        code = 0 if status == STATUS_COMPLETE else EXIT_INCOMPLETE if status == STATUS_INCOMPLETE else (rc or 1)
        if code:
            break
    print(last)
    sys.stdout.flush()
    return code


def _call_forwarding_signals(cmd: list[str]) -> int:
    """Run torchrun in its own process group and pass SIGTERM / SIGUSR1 / SIGINT to the whole group, so every
    worker checkpoints and exits 75. torchrun itself ignores SIGUSR1 (by default it would die of it and
    orphan its workers mid-checkpoint); the workers install their own handlers."""
    import signal
    import subprocess

    def ignore_usr1() -> None:
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)

    proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=ignore_usr1)

    def forward(signum, _frame) -> None:
        # torchrun starts each worker in a session of its own: signal the whole process tree, not a group
        for pid in [proc.pid, *_descendants(proc.pid)]:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)}
    try:
        return proc.wait()
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _descendants(root: int) -> list[int]:
    """Every process below `root` (Linux /proc; elsewhere `pgrep -P`)."""
    children: dict[int, list[int]] = {}
    try:
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
    except FileNotFoundError:
        import subprocess

        def kids(p: int) -> list[int]:
            out = subprocess.run(["pgrep", "-P", str(p)], capture_output=True, text=True).stdout
            return [int(x) for x in out.split()]

        children = {}
        todo = [root]
        while todo:
            p = todo.pop()
            children[p] = kids(p)
            todo += children[p]
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _store_and_settings():
    """The configured store (None: runs stay local) and the settings."""
    from ..settings import load_settings
    from ..store import configured_store

    return configured_store(), load_settings()
