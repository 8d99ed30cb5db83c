"""A SIGUSR1 that arrives before the trainer listens.

SLURM sends USR1 ("time limit near", relayed by the job script) whenever the limit says, possibly while a
requeued `molremote train` is still importing torch or reading data. USR1's default action ends the process
(exit 138), losing the requeue. `catch()` is called first thing in `molremote train`: from then on a USR1 is
remembered here, and `StopFlag.install()` turns it into a stop at the trainer's first check (checkpoint,
exit 75). Torch-free.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

PENDING: list[str] = []  # names of signals received before the trainer installed its handlers


def _remember(signum: int, _frame: Any) -> None:
    PENDING.append(signal.Signals(signum).name)


def catch() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGUSR1, _remember)
