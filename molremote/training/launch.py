"""Start or resume the run of one (experiment, fold): the folder, the finished-run rule, tracking, logs."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ManifestError
from ..experiments import Experiment
from ..runlock import RunLock
from ..runs import STATUS_COMPLETE, STATUS_INCOMPLETE, STATUS_RUNNING, Run, run_key, run_path
from .trainer import TrainResult, train_run

if TYPE_CHECKING:
    from ..settings import Settings
    from ..store.base import Store


def _echo_to(run: Run):
    log_file = run.logs / "train.log"

    def echo(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)
        with open(log_file, "a") as f:
            f.write(f"{dt.datetime.now().isoformat(timespec='seconds')} {msg}\n")

    return echo


def train_fold(
    exp: Experiment,
    fold: int,
    *,
    sets: list[str] | None = None,
    max_time_s: float | None = None,
    restart: bool = False,
    progress: bool | None = None,
    root: Path | None = None,
    store: Store | str | None = None,
    settings: Settings | None = None,
    wait: bool = False,
    repair: bool = False,
) -> TrainResult:
    """Train one fold; resume an unfinished run; leave a finished one alone unless `restart`.
    Rank 0 holds the run folder's lock for its whole life (RunBusyError when another process holds it,
    unless `wait`). A damaged manifest stops the run (ManifestError) unless `repair`.
    Under torchrun, rank 0 prepares the run folder and the other ranks wait for it."""
    from .dist import init_from_env

    dist = init_from_env(prefer_cuda=exp.training.device != "cpu")
    if not dist.is_main:
        try:
            dist.barrier()  # rank 0 has prepared the folder (or found the run complete)
            path = run_path(exp, fold, root)
            if (Run(path).manifest() or {}).get("status") == STATUS_COMPLETE and not restart:
                return TrainResult(STATUS_COMPLETE, path, 0, None)
            return train_run(exp, fold, Run(path), max_time_s=max_time_s, progress=False, dist=dist)
        finally:
            dist.close()  # leaving the group explicitly: an open gloo group aborts the process at exit
    try:
        lock = _lock_run(run_path(exp, fold, root), wait)
        try:
            return _train_main(
                exp,
                fold,
                dist,
                lock,
                sets=sets,
                max_time_s=max_time_s,
                restart=restart,
                progress=progress,
                root=root,
                store=store,
                settings=settings,
                repair=repair,
            )
        finally:
            lock.release()
    finally:
        dist.close()


def _store_for_parents(store: Store | str | None) -> Store | None:
    """Where stacked parents' missing runs are pulled from: the run's store, else the configured one."""
    if store is not None and not isinstance(store, str):
        return store
    from ..store import configured_store

    return configured_store(default_if_present=True)


def _lock_run(path: Path, wait: bool) -> RunLock:
    """One writer per run: the lock is taken before anything in the folder is read or written. A folder made
    only to hold the lock is removed again if training never starts (a data error leaves nothing behind)."""
    fresh = not path.exists()
    lock = RunLock(path, "train").acquire(
        wait, on_wait=lambda who: print(f"waiting for {path} held by {who} (--wait)", file=sys.stderr, flush=True)
    )
    if fresh:
        lock.cleanup_if_unused = True
    return lock


def _train_main(
    exp: Experiment,
    fold: int,
    dist: Any,
    lock: RunLock,
    *,
    sets,
    max_time_s,
    restart,
    progress,
    root,
    store,
    settings,
    repair,
) -> TrainResult:
    path = run_path(exp, fold, root)
    run0 = Run(path)
    repaired = None
    try:
        existing = run0.manifest()
    except ManifestError:
        if not repair:
            raise
        repaired = run0.set_corrupt_manifest_aside()
        print(f"kept the damaged manifest as {repaired}; starting a new record for the run (--repair)", file=sys.stderr)
        existing = None
    if (
        existing
        and restart
        and existing.get("restarted_from")
        and existing.get("status") in (STATUS_INCOMPLETE, STATUS_RUNNING)
    ):
        # "resume with the same command": the run this --restart began is resumed, not restarted again
        print(
            f"resuming the run begun by --restart (the previous one is kept as {existing['restarted_from']}); "
            f"to start over once more, move {path} aside first",
            file=sys.stderr,
        )
        restart = False
    if existing and existing.get("status") == STATUS_COMPLETE and not restart:
        best = existing.get("best") or {}
        print(
            f"run {path} is already complete (best {best.get('metric')} {best.get('value')}); "
            "use --restart to train it again",
            file=sys.stderr,
        )
        dist.barrier()
        return TrainResult(STATUS_COMPLETE, path, 0, existing.get("best"))
    if existing and restart:
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        aside = path.with_name(f"{path.name}.replaced-{stamp}")
        os.replace(path, aside)  # nothing is lost: the old run stays next to the new one
        lock.move_to(path)
        print(f"moved the previous run to {aside}", file=sys.stderr)
    if existing is None and store is not None and repaired is None:
        from ..store.ops import restore_for_resume

        restored = restore_for_resume(store, run_key(exp, fold), path)
        if restored is not None:
            print(f"restored {run_key(exp, fold)} from {store.url} (status {restored.get('status')})", file=sys.stderr)
            if restored.get("status") == STATUS_COMPLETE and not restart:
                dist.barrier()
                return TrainResult(STATUS_COMPLETE, path, 0, restored.get("best"))
    # read the data before creating anything: a missing file fails here, leaving no empty run folder behind
    from ..tasks import get_task

    task = get_task(exp)
    task.load()
    stacked = None
    if exp.data.stack:  # other experiments' predictions as features: found (or pulled) before any folder is made
        from ..stacking import attach

        stacked = attach(
            exp,
            fold,
            task,
            store=_store_for_parents(store),
            runs_root=path.parent.parent,
            manifest=None if (existing and restart) else existing,
            run_dir=path,
        )
    run = Run.create_or_open(exp, fold, sets=sets, root=root)
    lock.cleanup_if_unused = False
    if stacked is not None:
        run.update(stacked_on=stacked.sources)  # the parent runs (run_uid) its features came from
    if existing and restart:
        run.update(restarted_from=aside.name)  # a sibling folder; the name travels
    if repaired is not None:
        run.update(repaired_from=repaired.name)
    manifest = run.start_session()
    if dist.enabled:
        run.update(world_size=dist.world)
    dist.barrier()
    echo = _echo_to(run)
    tracker = None
    if settings is not None:
        from ..tracking import open_tracker

        tracker = open_tracker(run.path, exp.to_json(), manifest, fold, settings)
    sync = None
    if store is not None:
        from ..store.sync import BackgroundSync

        sync = BackgroundSync(store, run.path, run_key(exp, fold))
    try:
        result = train_run(
            exp,
            fold,
            run,
            max_time_s=max_time_s,
            progress=progress,
            tracker=tracker,
            on_checkpoint=(sync.request if sync else None),
            echo=echo,
            dist=dist,
            task=task,
        )
    finally:
        if tracker is not None:
            tracker.finish((run.manifest() or {}).get("status", "failed"))
        if sync is not None:
            ok = sync.flush(timeout=600)
            sync.stop()
            if not ok:
                echo(
                    f"warning: the final push to the store did not complete; the local run folder {run.path} "
                    "is intact: `molremote push` it later"
                )
    return result
