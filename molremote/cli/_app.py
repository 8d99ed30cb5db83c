from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(name="molremote", no_args_is_help=True, add_completion=False,
                  help="Numbered experiments for molecular ML, trained anywhere: here, Kaggle, SSH, SLURM.",
                  pretty_exceptions_enable=False)
console = Console()
err_console = Console(stderr=True)
