"""The `molremote` command: thin Typer commands over the library, Rich output.

Start-up stays light: this package imports no torch, kaggle, wandb or huggingface_hub; each command
imports what it needs when it runs.
"""
from __future__ import annotations

import sys

import typer

from ..errors import MolremoteError
from ._app import app, console, err_console  # noqa: F401
from . import experiments as _experiments  # noqa: F401  (registers ls/show/diff)
from . import train as _train  # noqa: F401  (registers train)
from . import settings as _settings  # noqa: F401  (registers config/doctor/wandb-sync)
from . import evaluate as _evaluate  # noqa: F401  (registers evaluate/ensemble/scores)
from . import store as _store  # noqa: F401  (registers push/pull/runs)
from . import remote as _remote  # noqa: F401  (registers remote, data)
from . import jobs as _jobs  # noqa: F401  (registers status/logs/cancel/fetch)
from . import report as _report  # noqa: F401  (registers plot/report)


def main() -> None:
    try:
        rv = app(standalone_mode=False)  # returns typer.Exit codes instead of raising SystemExit
        sys.exit(rv if isinstance(rv, int) else 0)
    except MolremoteError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:  # click usage errors and the like
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise
