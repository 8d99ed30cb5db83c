"""A store in a folder (local disk or a shared filesystem): `<root>/runs/<run key>/<files>`."""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..errors import StoreError
from .base import (KEEP_IN_STORE, MANIFEST, RUNS_PREFIX, Store, check_conflict, check_only, copy_atomic,
                   dest_targets, excluded, hash_file, in_subset, keys_from_manifest_paths, local_manifest,
                   manifest_last, match_experiment, read_json_file, safe_relpath, scan_run_dir, validate_key)

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
                    raise StoreError(f"refusing {p}: the store holds a symlink where a file or folder was "
                                     "expected (it could point outside the run); nothing was written")
            for name in files:
                rel = (Path(top) / name).relative_to(base).as_posix()
                if not excluded(rel):
                    out.append(safe_relpath(rel, where=f"{self.url} {base.name}"))
        return sorted(out)

    def push(self, run_dir: Path, key: str, *, force: bool = False) -> dict[str, Any]:
        key, run_dir = validate_key(key), Path(run_dir)
        mine = local_manifest(run_dir)
        with self._lock(key):
            target = self._run(key)
            stored_files = set(self._stored_files(target)) if target.is_dir() else set()
            check_conflict(key, mine, read_json_file(target / MANIFEST, f"stored manifest of {key}"), self.url, force)
            local = scan_run_dir(run_dir)
            uploaded, nbytes = [], 0
            for rel in manifest_last(local):
                dst = target / rel
                if rel in stored_files and dst.stat().st_size == local[rel].size \
                        and hash_file(dst).sha256 == local[rel].sha256:
                    continue
                copy_atomic(run_dir / rel, dst)
                uploaded.append(rel)
                nbytes += local[rel].size
            deleted = sorted(r for r in stored_files - set(local) if not r.startswith(KEEP_IN_STORE))
            for rel in deleted:
                (target / rel).unlink()
            for rel in deleted:  # prune folders the deletions emptied
                d = (target / rel).parent
                while d != target and d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
                    d = d.parent
        log.info("pushed %s to %s: %d uploaded, %d deleted", key, self.url, len(uploaded), len(deleted))
        return {"key": key, "store": self.url, "uploaded": uploaded, "deleted": deleted,
                "unchanged": len(local) - len(uploaded), "bytes": nbytes, "commit": None}

    def pull(self, key: str, dest: Path, only: list[str] | None = None) -> Path:
        key, only = validate_key(key), check_only(only)
        src = self._run(key)
        if not (src / MANIFEST).is_file():
            raise StoreError(f"run {key} is not in store {self.url}")
        rels = [r for r in self._stored_files(src) if in_subset(r, only)]
        targets = dest_targets(Path(dest), rels, where=f"{self.url} run {key}")
        for rel in manifest_last(rels):
            dst = targets[rel]
            if dst.is_file() and dst.stat().st_size == (src / rel).stat().st_size \
                    and hash_file(dst).sha256 == hash_file(src / rel).sha256:
                continue
            copy_atomic(src / rel, dst)
        return Path(dest)

    def list_runs(self, experiment: int | str | None = None) -> list[dict[str, Any]]:
        base = self.root / RUNS_PREFIX
        paths = [(Path(top) / MANIFEST).relative_to(base).as_posix()
                 for top, _, files in os.walk(base) if MANIFEST in files]
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
