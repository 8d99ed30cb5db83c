"""The `molremote` command: thin Typer commands over the library, Rich output.

Start-up stays light: this package imports no torch, kaggle, wandb or huggingface_hub; each command
imports what it needs when it runs.

Exit codes come from the one table in `molremote.errors`. Typer runs in its standalone mode, so every usage
error (unknown option or command, bad value, missing argument, bare `molremote`) is Typer's own short
message and exit 2, whichever click Typer carries; library errors (`MolremoteError`) pass through Typer and
are printed here as one line with their exit code.
"""

from __future__ import annotations

import sys

from ..errors import EXIT_INTERRUPTED, MolremoteError
from . import embed as _embed  # noqa: F401  (registers embed)
from . import evaluate as _evaluate  # noqa: F401  (registers evaluate/ensemble/scores)
from . import experiments as _experiments  # noqa: F401  (registers ls/show/diff)
from . import jobs as _jobs  # noqa: F401  (registers status/logs/cancel/fetch)
from . import remote as _remote  # noqa: F401  (registers remote, data)
from . import report as _report  # noqa: F401  (registers plot/report)
from . import settings as _settings  # noqa: F401  (registers config/doctor/wandb-sync)
from . import store as _store  # noqa: F401  (registers push/pull/runs)
from . import train as _train  # noqa: F401  (registers train)
from ._app import app, console, err_console  # noqa: F401


def main() -> None:
    from rich.markup import escape

    try:
        app(prog_name="molremote")  # standalone: usage errors exit 2, typer.Exit(code) exits code
    except MolremoteError as e:
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)  # "[store]" stays
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err_console.print("aborted")
        sys.exit(EXIT_INTERRUPTED)
