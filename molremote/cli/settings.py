"""config / doctor / wandb-sync: project configuration and accounts, no torch."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ._app import app, console


@app.command("config")
def config_cmd() -> None:
    """The effective configuration (molremote.toml + environment), secrets masked."""
    from ..settings import config_path, effective_settings_table, load_settings

    s = load_settings()
    table = Table(title=f"settings ({s.file or f'no {config_path().name}: defaults'})")
    for col in ("key", "value", "source"):
        table.add_column(col, overflow="fold")
    for key, value, source in effective_settings_table(s):
        table.add_row(key, value, source)
    console.print(table)


@app.command()
def doctor(
    cuda: bool = typer.Option(True, "--cuda/--no-cuda", help="Also check for a GPU (imports torch in a child)."),
) -> None:
    """Check what is configured (Hub, W&B, Kaggle, SSH hosts, CUDA) and say what to fix."""
    from ..doctor import run_checks

    checks = run_checks(cuda=cuda)
    table = Table(title="molremote doctor")
    for col in ("check", "", "detail", "fix"):
        table.add_column(col, overflow="fold")
    failed = 0
    for c in checks:
        mark = "[green]ok[/]" if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]warn[/]")
        failed += (not c.ok) and c.required
        table.add_row(c.name, mark, c.detail, "" if c.ok else c.fix)
    console.print(table)
    raise typer.Exit(1 if failed else 0)


@app.command("wandb-sync")
def wandb_sync(
    paths: list[Path] = typer.Argument(None, help="Run folders or W&B offline folders (default: all local runs)."),
    project: str | None = typer.Option(None, help="W&B project (default: settings)."),
    entity: str | None = typer.Option(None, help="W&B entity (default: settings)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be uploaded."),
) -> None:
    """Upload offline W&B runs, each resumed run's sessions in order into the same W&B run."""
    from ..project import runs_dir
    from ..tracking import sync_offline

    results = sync_offline(paths or [runs_dir()], project, entity, dry_run=dry_run)
    if not results:
        console.print("no offline W&B runs found")
    bad = 0
    for r in results:
        console.print(f"{'[green]ok[/]' if r.ok else '[red]failed[/]'} {r.run_id}: {len(r.paths)} folder(s)")
        if not r.ok:
            bad += 1
            console.print(r.output[-2000:], highlight=False)
    raise typer.Exit(1 if bad else 0)
