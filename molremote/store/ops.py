"""What the CLI's `push`, `pull` and `runs` commands do, as library functions (the commands stay thin).

push_run(run_dir)                      -> summary dict
pull_run(key, only=["metrics"])        -> local run folder
pull_experiment(620, fold=0)           -> [local run folders]
list_runs(620)                         -> rows merging the local runs folder and the store
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..project import runs_dir
from ..runs import STATUS_CORRUPT, shown_status
from .base import (
    MANIFEST,
    Store,
    StoreConflictError,
    Transfer,
    describe,
    keys_from_manifest_paths,
    match_experiment,
    read_json_file,
    validate_key,
)

log = logging.getLogger(__name__)


def _store(store: Store | str | None) -> Store:
    if isinstance(store, Store):
        return store
    from . import open_store

    return open_store(store)


def run_key_of(run_dir: Path, runs_root: Path | None = None) -> str:
    """A run folder's key: its path under the runs folder, else the manifest's `run_key`."""
    from ..runs import key_under

    root = Path(runs_root or runs_dir())
    key = key_under(run_dir, root)
    if key is not None:
        return validate_key(key)
    m = read_json_file(run_dir / MANIFEST, "run manifest") or {}
    if not m.get("run_key"):
        raise StoreError(f"{run_dir} is outside the runs folder {root} and its manifest has no 'run_key'")
    return validate_key(m["run_key"])


def push_run(
    run_dir: Path,
    *,
    store: Store | str | None = None,
    key: str | None = None,
    force: bool = False,
    runs_root: Path | None = None,
    transfer: Transfer | None = None,
) -> dict[str, Any]:
    """Push one run folder (changed files only). StoreConflictError if the store holds another run there."""
    return _store(store).push(Path(run_dir), key or run_key_of(run_dir, runs_root), force=force, transfer=transfer)


def pull_run(
    key: str,
    *,
    store: Store | str | None = None,
    only: list[str] | None = None,
    force: bool = False,
    runs_root: Path | None = None,
    dest: Path | None = None,
    transfer: Transfer | None = None,
) -> Path:
    """Bring a stored run into `<runs>/<key>` (or `dest`), holding the run folder's lock (RunBusyError while a
    trainer holds it). Refuses, unless `force`, when the local folder holds another run (different run_uid)
    or a newer copy of this one, and (see Store.pull) when it would overwrite files changed here."""
    from ..runlock import RunLock

    key, st = validate_key(key), _store(store)
    dest = Path(dest) if dest is not None else Path(runs_root or runs_dir()) / key
    fresh = not dest.exists()
    lock = RunLock(dest, "pull").acquire()
    lock.cleanup_if_unused = fresh  # a refused pull leaves no empty folder behind
    try:
        return _pull_locked(key, st, dest, only, force, transfer)
    finally:
        lock.release()


def _pull_locked(key: str, st: Store, dest: Path, only, force: bool, transfer) -> Path:
    if not force:
        mine = read_json_file(dest / MANIFEST, "local run manifest")
        theirs = st.read_manifest(key) if mine is not None else None
        if mine is not None and theirs is not None:
            if mine.get("run_uid") != theirs.get("run_uid"):
                raise StoreConflictError(
                    f"{dest} holds another run than {key} in {st.url}: local {describe(mine)}; stored "
                    f"{describe(theirs)}. Move the local folder away, or pull with --force to overwrite it."
                )
            if (mine.get("updated_at") or "") > (theirs.get("updated_at") or ""):
                raise StoreConflictError(
                    f"{dest} is newer than the stored copy of {key} (local updated {mine.get('updated_at')}, "
                    f"stored {theirs.get('updated_at')}): push it instead, or pull with --force."
                )
    return st.pull(key, dest, only, force=force, transfer=transfer)


def restore_for_resume(store: Store | str | None, key: str, dest: Path) -> dict | None:
    """Before training a run that has no local folder: bring the stored copy (if any) into `dest`, so the
    trainer resumes from its last checkpoint under the same run_uid (its later pushes then don't conflict).
    Returns the restored manifest, None if the store has no such run. `dest` must not hold a run."""
    key, st = validate_key(key), _store(store)
    if (Path(dest) / MANIFEST).exists():
        raise StoreError(f"{dest} already holds a run; not restoring {key} from {st.url} over it")
    stored = st.read_manifest(key)
    if stored is None:
        return None
    log.info("restoring %s from %s into %s (status %s)", key, st.url, dest, stored.get("status"))
    st.pull(key, Path(dest))
    return stored


def select_runs(
    experiment: int | str, *, fold: int | None = None, config_hash: str | None = None, store: Store | str | None = None
) -> list[dict[str, Any]]:
    """Stored runs of an experiment, optionally one fold / config hash ([{key, manifest}])."""
    rows = _store(store).list_runs(experiment)
    return [r for r in rows if _key_matches(r["key"], fold, config_hash)]


def pull_experiment(
    experiment: int | str,
    *,
    fold: int | None = None,
    config_hash: str | None = None,
    only: list[str] | None = None,
    force: bool = False,
    store: Store | str | None = None,
    runs_root: Path | None = None,
    transfer: Transfer | None = None,
) -> list[Path]:
    st = _store(store)
    rows = select_runs(experiment, fold=fold, config_hash=config_hash, store=st)
    if not rows:
        what = f"experiment {experiment}" + (f" fold {fold}" if fold is not None else "")
        raise StoreError(f"no run of {what} in store {st.url}")
    return [pull_run(r["key"], store=st, only=only, force=force, runs_root=runs_root, transfer=transfer) for r in rows]


def _key_matches(key: str, fold: int | None, config_hash: str | None) -> bool:
    from ..runs import parse_key

    parts = parse_key(key)
    if fold is not None and (parts is None or parts[1] != fold):
        return False
    return config_hash is None or (parts is not None and parts[2] == config_hash)


def local_runs(experiment: int | str | None = None, runs_root: Path | None = None) -> list[dict[str, Any]]:
    """[{key, path, manifest}] for the run folders under the runs folder."""
    root = Path(runs_root or runs_dir())
    if not root.is_dir():
        return []
    paths = [(Path(t) / MANIFEST).relative_to(root).as_posix() for t, _, f in os.walk(root) if MANIFEST in f]
    out = []
    for key in keys_from_manifest_paths(paths):
        if not match_experiment(key, experiment):
            continue
        try:
            validate_key(key)
        except StoreError as e:
            log.warning("skipping local run %s: %s", key, e)
            continue
        try:
            m = read_json_file(root / key / MANIFEST, "run manifest")
        except StoreError as e:  # shown, not skipped: a damaged run must not disappear from `runs`
            m = {"status": STATUS_CORRUPT, "error": str(e)}
        out.append({"key": key, "path": root / key, "manifest": m})
    return out


def list_runs(
    experiment: int | str | None = None,
    *,
    store: Store | str | None = None,
    runs_root: Path | None = None,
    include_store: bool = True,
) -> list[dict[str, Any]]:
    """Rows merging the local runs folder and the store, sorted by key:
    {key, path (local folder or None), local_manifest, store_manifest, manifest (the newer of the two),
     where: local-only | store-only | same | local-newer | store-newer | conflict (different run_uid)}."""
    rows: dict[str, dict[str, Any]] = {}
    for r in local_runs(experiment, runs_root):
        rows[r["key"]] = {"key": r["key"], "path": r["path"], "local_manifest": r["manifest"], "store_manifest": None}
    if include_store:
        for r in _store(store).list_runs(experiment):
            rows.setdefault(r["key"], {"key": r["key"], "path": None, "local_manifest": None})["store_manifest"] = r[
                "manifest"
            ]
    for row in rows.values():
        lm, sm = row.get("local_manifest"), row.setdefault("store_manifest", None)
        if sm is None:
            row["where"], row["manifest"] = "local-only", lm
        elif lm is None:
            row["where"], row["manifest"] = "store-only", sm
        elif lm.get("run_uid") != sm.get("run_uid"):
            row["where"], row["manifest"] = "conflict", lm
        else:
            lu, su = lm.get("updated_at") or "", sm.get("updated_at") or ""
            row["where"] = "same" if lu == su else ("local-newer" if lu > su else "store-newer")
            row["manifest"] = lm if lu >= su else sm
        m: dict[str, Any] = row["manifest"] or {}
        # a local run marked running whose trainer here is gone shows as stopped
        row["status"] = shown_status(row["path"], m) if row.get("path") is not None and m is lm else m.get("status")
    return [rows[k] for k in sorted(rows)]


__all__ = [
    "push_run",
    "pull_run",
    "restore_for_resume",
    "pull_experiment",
    "select_runs",
    "list_runs",
    "local_runs",
    "run_key_of",
]
