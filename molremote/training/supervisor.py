"""Run `molremote train` again under torchrun with N processes, and supervise it: signals reach every worker,
and the exit code comes from the run's manifest. torch-free in this process (torchrun is a child).

Used by `molremote train --gpus N` (and so by the ssh/slurm launchers that run it) when not already a worker.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import EXIT_INCOMPLETE

if TYPE_CHECKING:
    from ..experiments import Experiment


def run_under_torchrun(
    gpus: int,
    exp: Experiment,
    folds: list[int] | list[tuple[int, int | None]],
    argv: list[str] | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Re-run this same command (`argv`, default sys.argv) under torchrun with `gpus` processes, then report
    like a single process: prints the last run folder and returns the exit code taken from the run's manifest
    (torchrun turns a worker's 75 into a generic failure)."""
    from ..runs import STATUS_COMPLETE, STATUS_INCOMPLETE, Run, run_path

    argv = list(sys.argv if argv is None else argv)
    # the same entry point as this process: the console script (or any wrapper script) as a script,
    # `python -m molremote` as a module
    entry = argv[0]
    target = ["-m", "molremote"] if entry.endswith("__main__.py") or not os.path.isfile(entry) else [entry]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={gpus}",
        *target,
        *argv[1:],
    ]
    echo(f"torchrun {gpus} processes: {' '.join(cmd[3:])}")
    rc = call_forwarding_signals(cmd)
    last, code = None, rc
    for unit in folds:  # folds, or (fold, seed) runs
        f, seed = unit if isinstance(unit, tuple) else (unit, None)
        last = run_path(exp.with_seed(seed), f)
        status = (Run(last).manifest() or {}).get("status")
        code = 0 if status == STATUS_COMPLETE else EXIT_INCOMPLETE if status == STATUS_INCOMPLETE else (rc or 1)
        if code:
            break
    print(last)
    sys.stdout.flush()
    return code


def call_forwarding_signals(cmd: list[str]) -> int:
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
        for pid in [proc.pid, *descendants(proc.pid)]:
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


def descendants(root: int) -> list[int]:
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
