"""The Typer application every command module registers on, and the two consoles (stdout for results,
stderr for messages)."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="molremote",
    no_args_is_help=True,
    help="Numbered experiments for molecular ML, trained anywhere: here, Kaggle, SSH, SLURM.",
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("molremote")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        print(f"molremote {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool | None = typer.Option(
        None, "--version", callback=_print_version, is_eager=True, help="Print the installed version and exit."
    ),
) -> None:
    """Numbered experiments for molecular ML, trained anywhere: here, Kaggle, SSH, SLURM."""
