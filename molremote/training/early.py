"""A SIGUSR1 that arrives before the trainer listens.

SLURM sends USR1 ("time limit near", relayed by the job script) whenever the limit says, possibly while a
requeued `molremote train` is still importing torch or reading data. USR1's default action ends the process
(exit 138), losing the requeue. `catch()` is called first thing in `molremote train`: from then on a USR1 is
remembered here, and `StopFlag.install()` turns it into a stop at the trainer's first check (checkpoint,
exit 75). Torch-free.

A signal can also come before this process exists (a multi-node job: torchrun is still importing torch when
the job script relays USR1, and has no workers to pass it to). Job scripts therefore first touch the file
named by MOLREMOTE_STOP_FILE, then signal: `catch()` installs the handler, then looks for the file, so a USR1
is either delivered to the handler or found as the file, whatever the order.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

PENDING: list[str] = []  # names of signals received before the trainer installed its handlers
STOP_FILE_ENV = "MOLREMOTE_STOP_FILE"  # set by the ssh/slurm job scripts; the file exists once USR1 came


def _remember(signum: int, _frame: Any) -> None:
    PENDING.append(signal.Signals(signum).name)


def catch() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGUSR1, _remember)
    stop_file = os.environ.get(STOP_FILE_ENV)
    if stop_file and os.path.exists(stop_file) and "SIGUSR1" not in PENDING:
        PENDING.append("SIGUSR1")


def ignore_late() -> None:
    """The run ended (complete): a USR1 from now on is ignored. SLURM's warning can come while this process
    exits, and CPython restores the default action of every signal with a Python handler at interpreter
    shutdown: USR1's default would end a finished run with exit 138 (the job then fails). An ignored signal
    stays ignored through shutdown."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
