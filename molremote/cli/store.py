"""push / pull / runs: run folders between this machine and the store. No torch."""

from __future__ import annotations

import json
from contextlib import contextmanager

import typer
from rich.table import Table

from ..errors import StoreError
from ._app import app, console, err_console
from ._options import Experiment, ExperimentOpt, Fold, Json

ONLY_HELP = "Only part of the run: checkpoints | predictions | metrics (repeatable); manifest and config always come."


def _configured_store():
    from ..store import configured_store

    return configured_store()


@contextmanager
def _transfer_bar(verb: str):
    """A Rich progress bar (bytes, rate, ETA) fed by the store's Transfer hooks; on stderr, only on a terminal."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from ..store.base import Transfer

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )

    class Bar(Transfer):
        task = None

        def start(self, key: str, files: int, nbytes: int) -> None:
            self.task = bar.add_task(f"{verb} {key} ({files} files)", total=nbytes)

        def advance(self, rel: str, nbytes: int) -> None:
            if self.task is not None:
                bar.advance(self.task, nbytes)

    with bar:
        yield Bar()


@app.command()
def push(
    exp_id: Experiment,
    fold: Fold = None,
    force: bool = typer.Option(False, "--force", help="Replace a different run stored under the same key."),
) -> None:
    """Push local run folders of an experiment to the configured store (changed files only)."""
    from ..runs import parse_key
    from ..store.ops import local_runs, push_run

    store = _configured_store()
    if store is None:
        raise StoreError(
            "no store configured: set [store] url in molremote.toml or MOLREMOTE_STORE "
            "(a folder, file://..., or hf://owner/repo)"
        )
    rows = [r for r in local_runs(exp_id) if fold is None or (parse_key(r["key"]) or ("", -1, ""))[1] == fold]
    if not rows:
        raise StoreError(f"no local run of experiment {exp_id}" + (f" fold {fold}" if fold is not None else ""))
    for r in rows:
        with _transfer_bar("push") as bar:
            s = push_run(r["path"], store=store, key=r["key"], force=force, transfer=bar)
        console.print(
            f"pushed {s['key']} -> {s['store']}: {len(s['uploaded'])} uploaded, "
            f"{len(s['deleted'])} deleted, {s['unchanged']} unchanged"
        )


@app.command()
def pull(
    exp_id: Experiment,
    fold: Fold = None,
    only: list[str] = typer.Option([], "--only", help=ONLY_HELP),
    config_hash: str | None = typer.Option(None, "--hash", help="Only runs with this config hash."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Overwrite a local folder holding another or newer run; "
        "files changed here since the last sync go to <run>/.backups/<time>/ first.",
    ),
) -> None:
    """Bring an experiment's runs here: from the store, or from the backend's output when there is no store."""
    store = _configured_store()
    if store is not None:
        from ..store.ops import pull_experiment

        with _transfer_bar("pull") as bar:
            pulled = pull_experiment(
                exp_id, fold=fold, config_hash=config_hash, only=only or None, force=force, store=store, transfer=bar
            )
        for p in pulled:
            console.print(f"pulled {p}")
        return
    from .. import jobs
    from ..backends import fetch_runs
    from ..project import runs_dir

    records = [r for r in jobs.load_all(experiment=exp_id) if fold is None or fold in r.folds]
    if not records:
        raise StoreError(
            f"no store configured and no remote job of experiment {exp_id} recorded here: nothing to pull from"
        )
    rec = records[-1]
    for line in fetch_runs(rec, runs_dir()):
        console.print(f"fetched {rec.backend} job {rec.job_id}: {line}", markup=False)


@app.command()
def runs(
    exp_id: ExperimentOpt = None,
    local_only: bool = typer.Option(False, "--local", help="Do not ask the store."),
    as_json: Json = False,
) -> None:
    """Runs known here and in the store, with status and best score."""
    from ..store.ops import list_runs

    store = None if local_only else _configured_store()
    rows = list_runs(exp_id, store=store, include_store=store is not None)
    if as_json:
        print(json.dumps([{k: (str(v) if k == "path" and v else v) for k, v in r.items()} for r in rows], default=str))
        return
    table = Table(title="runs" + (f" (store {store.url})" if store else " (local)"))
    for col in ("run", "where", "status", "best", "updated", "host"):
        table.add_column(col, overflow="fold")
    for r in rows:
        m = r.get("manifest") or {}
        best = m.get("best") or {}
        score = f"{best['value']:.4f} {best.get('metric', '')}" if best.get("value") is not None else ""
        table.add_row(
            r["key"],
            r.get("where", "local-only"),
            r.get("status") or "",
            score,
            m.get("updated_at", ""),
            (m.get("machine") or {}).get("hostname", ""),
        )
    console.print(table)
    if not rows:
        err_console.print("no runs yet: `molremote train -e N`")
