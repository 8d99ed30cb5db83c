"""A store in a folder (local disk or a shared filesystem): `<root>/runs/<run key>/<files>`."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .base import (
    INDEX,
    KEEP_IN_STORE,
    MANIFEST,
    RUNS_PREFIX,
    Store,
    Transfer,
    check_conflict,
    check_only,
    copy_atomic,
    dest_targets,
    excluded,
    guard_local_changes,
    hash_file,
    in_subset,
    keys_from_manifest_paths,
    local_manifest,
    manifest_last,
    match_experiment,
    read_json_file,
    safe_relpath,
    scan_run_dir,
    validate_key,
    write_sync_record,
)

log = logging.getLogger(__name__)


class LocalStore(Store):
    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().absolute()
        self.url = f"file://{self.root}"

    def _run(self, key: str) -> Path:
        return self.root / RUNS_PREFIX / validate_key(key)

    @contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        """One writer per run key at a time (a trainer's background sync and a manual `push`, or two
        machines on a shared filesystem). flock: released by the kernel if the process dies."""
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / (hashlib.sha1(key.encode()).hexdigest() + ".lock"), "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _stored_files(self, base: Path) -> list[str]:
        """Relative paths of the files under a stored run; refuses symlinks (a store holds plain files)."""
        out = []
        for top, dirs, files in os.walk(base, followlinks=False):
            for name in dirs + files:
                p = Path(top) / name
                if p.is_symlink():
                    raise StoreError(
                        f"refusing {p}: the store holds a symlink where a file or folder was "
                        "expected (it could point outside the run); nothing was written"
                    )
            for name in files:
                rel = (Path(top) / name).relative_to(base).as_posix()
                if not excluded(rel):
                    out.append(safe_relpath(rel, where=f"{self.url} {base.name}"))
        return sorted(out)

    def _index(self, key: str) -> dict[str, dict[str, Any]] | None:
        d = read_json_file(self._run(key) / INDEX, f"file index of {key} in {self.url}")
        return None if d is None else d.get("files", {})

    def _missing_root(self) -> StoreError:
        return StoreError(
            f"store folder {self.root} does not exist: check [store] url in molremote.toml or "
            "MOLREMOTE_STORE (a typo, an unmounted disk?); `molremote push` creates it"
        )

    def push(self, run_dir: Path, key: str, *, force: bool = False, transfer: Transfer | None = None) -> dict[str, Any]:
        key, run_dir = validate_key(key), Path(run_dir)
        transfer = transfer or Transfer()
        mine = local_manifest(run_dir)
        with self._lock(key):
            target = self._run(key)
            stored_files = set(self._stored_files(target)) if target.is_dir() else set()
            check_conflict(key, mine, read_json_file(target / MANIFEST, f"stored manifest of {key}"), self.url, force)
            try:
                old_index = (self._index(key) or {}) if target.is_dir() else {}
            except StoreError:  # a damaged index is rewritten whole below
                old_index = {}
            local = scan_run_dir(run_dir)
            todo = [
                rel
                for rel in manifest_last(local)
                if not (
                    rel in stored_files
                    and (target / rel).stat().st_size == local[rel].size
                    and hash_file(target / rel).sha256 == local[rel].sha256
                )
            ]
            transfer.start(key, len(todo), sum(local[r].size for r in todo))
            uploaded, nbytes = [], 0
            for rel in todo:
                copy_atomic(run_dir / rel, target / rel)
                uploaded.append(rel)
                nbytes += local[rel].size
                transfer.advance(rel, local[rel].size)
            deleted = sorted(r for r in stored_files - set(local) if not r.startswith(KEEP_IN_STORE))
            for rel in deleted:
                (target / rel).unlink()
            for rel in deleted:  # prune folders the deletions emptied
                d = (target / rel).parent
                while d != target and d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
                    d = d.parent
            index = {rel: {"size": fi.size, "sha256": fi.sha256} for rel, fi in local.items()}
            for rel in stored_files - set(local) - set(deleted):  # kept in the store (checkpoints)
                index[rel] = old_index.get(rel) or {
                    "size": (target / rel).stat().st_size,
                    "sha256": hash_file(target / rel).sha256,
                }
            from ..fsutil import write_json

            write_json(target / INDEX, {"files": dict(sorted(index.items()))})
        write_sync_record(run_dir, {rel: fi.sha256 for rel, fi in local.items()}, self.url)
        log.info("pushed %s to %s: %d uploaded, %d deleted", key, self.url, len(uploaded), len(deleted))
        return {
            "key": key,
            "store": self.url,
            "uploaded": uploaded,
            "deleted": deleted,
            "unchanged": len(local) - len(uploaded),
            "bytes": nbytes,
            "commit": None,
        }

    def pull(
        self,
        key: str,
        dest: Path,
        only: list[str] | None = None,
        *,
        force: bool = False,
        transfer: Transfer | None = None,
    ) -> Path:
        key, only = validate_key(key), check_only(only)
        transfer, dest = transfer or Transfer(), Path(dest)
        if not self.root.is_dir():
            raise self._missing_root()
        src = self._run(key)
        where = f"{self.url} run {key}"
        with self._lock(key):  # a push in progress finishes first: the index and the files agree
            if not (src / MANIFEST).is_file():
                raise StoreError(f"run {key} is not in store {self.url}")
            index = self._index(key)
            if index is None:
                raise StoreError(
                    f"{where}: no file index ({INDEX}) to check the files against (pushed by an "
                    "older molremote): push the run again from a machine that has it; nothing "
                    "was written"
                )
            rels = [r for r in self._stored_files(src) if in_subset(r, only)]
            unindexed = [r for r in rels if r not in index]
            if unindexed:
                raise StoreError(
                    f"{where}: stored file(s) {', '.join(unindexed)} are not in the store's index: "
                    "written there by something other than `molremote push`; nothing was written"
                )
            targets = dest_targets(dest, rels, where=where)
            fetch = [
                r
                for r in manifest_last(rels)
                if not (
                    targets[r].is_file()
                    and targets[r].stat().st_size == index[r]["size"]
                    and hash_file(targets[r]).sha256 == index[r]["sha256"]
                )
            ]
            if fetch:
                guard_local_changes(dest, targets, fetch, force, where)
                dest.mkdir(parents=True, exist_ok=True)
                # copy and check everything into a staging folder beside dest, then move it in: a mismatch or
                # a failure half-way leaves dest as it was
                staging = Path(tempfile.mkdtemp(prefix=".molremote-pull-", dir=dest.resolve().parent))
                try:
                    transfer.start(key, len(fetch), sum(index[r]["size"] for r in fetch))
                    got = {}
                    for i, rel in enumerate(fetch):
                        tmp = staging / str(i)
                        h = hashlib.sha256()
                        with open(src / rel, "rb") as f, open(tmp, "wb") as out:
                            while chunk := f.read(1 << 20):
                                h.update(chunk)
                                out.write(chunk)
                            out.flush()
                            os.fsync(out.fileno())
                        if h.hexdigest() != index[rel]["sha256"] or tmp.stat().st_size != index[rel]["size"]:
                            raise StoreError(
                                f"{where}: stored {rel} does not match its sha256 in the store's "
                                f"index (damaged in the store: {src / rel}); nothing was written"
                            )
                        got[rel] = tmp
                        transfer.advance(rel, index[rel]["size"])
                    for rel in fetch:
                        targets[rel].parent.mkdir(parents=True, exist_ok=True)
                        os.replace(got[rel], targets[rel])
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
        write_sync_record(dest, {r: index[r]["sha256"] for r in rels}, self.url, merge=True)
        return dest

    def list_runs(self, experiment: int | str | None = None) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            raise self._missing_root()
        base = self.root / RUNS_PREFIX
        paths = [
            (Path(top) / MANIFEST).relative_to(base).as_posix() for top, _, files in os.walk(base) if MANIFEST in files
        ]
        out = []
        for key in keys_from_manifest_paths(paths):
            if match_experiment(key, experiment):
                try:
                    m = self.read_manifest(key)
                except StoreError as e:
                    log.warning("skipping %s: %s", key, e)
                    continue
                out.append({"key": key, "manifest": m})
        return out

    def read_manifest(self, key: str) -> dict | None:
        return read_json_file(self._run(key) / MANIFEST, f"stored manifest of {key} in {self.url}")
