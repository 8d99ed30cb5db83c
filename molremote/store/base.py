"""The Store interface and the helpers every store shares: keys, file scans, subsets, path safety, conflicts.

A store is the durable home of run folders. Layout, identical in every store: `runs/<run key>/<run files>`,
where the run key is `<NNNN_slug>/fold<k>-<confighash>` and the files are the run folder's own
(manifest.json, config.json, metrics.jsonl, checkpoints/, predictions/, submission.csv, logs/).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from ..errors import StoreError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
RUNS_PREFIX = "runs"
# `pull --only` subsets; manifest.json and config.json always come along (small, and they identify the run).
ALWAYS = ("manifest.json", "config.json")
SUBSETS: dict[str, tuple[str, ...]] = {
    "checkpoints": ("checkpoints/",),
    "predictions": ("predictions/", "submission.csv", "submission.tsv"),  # .tsv: long-format tasks (CAFA)
    "metrics": ("metrics.jsonl", "logs/"),
}
# Files removed locally are deleted from the store on push, except these: a machine that pulled only
# metrics, or pruned its local checkpoints, must not wipe the checkpoints other machines resume from.
KEEP_IN_STORE = ("checkpoints/",)
# Never pushed: hidden files and folders (temp files of atomic writes, `.cache/` of Hub downloads),
# unfinished writes, and the trainer's local safety copy of the previous checkpoint (the store keeps
# whole files only, so it never needs one; skipping it halves checkpoint upload volume).
EXCLUDE_SUFFIXES = (".tmp", ".partial", ".incomplete", "~", ".prev.pt")

_KEY_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]*")


class StoreConflictError(StoreError):
    """The store holds a different run (another run_uid) under the same key: not retried, needs --force."""


def validate_key(key: str) -> str:
    """A run key: relative POSIX path of plain segments. Returns it normalised (no trailing slash)."""
    k = str(key).strip().rstrip("/")
    parts = k.split("/") if k else []
    if not parts or not all(_KEY_SEGMENT.fullmatch(p) for p in parts) or any(p == ".." for p in parts):
        raise StoreError(
            f"invalid run key {key!r}: expected '<NNNN_slug>/fold<k>-<confighash>' "
            "(letters, digits, '._+=-'; no '..', no leading '/' or '.')"
        )
    return k


def safe_relpath(rel: str, *, where: str) -> str:
    """A file path inside a run folder, as a store names it: refuse anything that could escape the folder."""
    bad = (
        not rel
        or "\x00" in rel
        or "\\" in rel
        or ".." in rel.split("/")
        or "." in rel.split("/")
        or "" in rel.split("/")
        or PurePosixPath(rel).is_absolute()
        or PureWindowsPath(rel).drive
    )
    if bad:
        raise StoreError(
            f"refusing unsafe path {rel!r} in {where}: it would escape the run folder "
            "(absolute, '..' or empty segment); nothing was written"
        )
    return rel


# Damaged files kept aside locally for inspection (`last.pt.corrupt-<time>`, `manifest.json.corrupt-<time>`)
# stay local: a store holds the run, not its wreckage.
CORRUPT_MARK = ".corrupt-"


def excluded(rel: str) -> bool:
    parts = rel.split("/")
    return any(p.startswith(".") for p in parts) or parts[-1].endswith(EXCLUDE_SUFFIXES) or CORRUPT_MARK in parts[-1]


def in_subset(rel: str, only: list[str] | None) -> bool:
    if only is None:
        return True
    if rel in ALWAYS:
        return True
    return any(rel == p or (p.endswith("/") and rel.startswith(p)) for s in only for p in SUBSETS[s])


def check_only(only: list[str] | None) -> list[str] | None:
    if only is None:
        return None
    bad = [s for s in only if s not in SUBSETS]
    if bad:
        raise StoreError(f"unknown --only value(s) {', '.join(map(repr, bad))}: choose from {', '.join(SUBSETS)}")
    return list(only)


@dataclass(frozen=True)
class FileInfo:
    size: int
    sha256: str
    git_sha1: str  # git blob id: what the Hub reports as `oid` for regular (non-LFS) files


# (path, inode, size, mtime_ns) -> FileInfo. A background sync re-scans the run folder every few minutes;
# checkpoints (often GBs) are only re-read once they were rewritten. The trainer replaces files by rename,
# which gives a new inode and mtime.
_HASH_CACHE: dict[tuple, FileInfo] = {}


def hash_file(path: Path) -> FileInfo:
    st = os.stat(path)
    ck = (str(Path(path).absolute()), st.st_ino, st.st_size, st.st_mtime_ns)
    if ck in _HASH_CACHE:
        return _HASH_CACHE[ck]
    h256 = hashlib.sha256()
    h1 = hashlib.sha1(b"blob %d\0" % st.st_size)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h256.update(chunk)
            h1.update(chunk)
    info = FileInfo(st.st_size, h256.hexdigest(), h1.hexdigest())
    if len(_HASH_CACHE) > 10_000:
        _HASH_CACHE.clear()
    _HASH_CACHE[ck] = info
    return info


def scan_run_dir(run_dir: Path) -> dict[str, FileInfo]:
    """{relative posix path: FileInfo} for every pushable file. Symlinks (files or folders) are skipped,
    never followed: a run folder must not leak files from outside it into a store."""
    out: dict[str, FileInfo] = {}
    for top, dirs, files in os.walk(run_dir, followlinks=False):
        for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            p = Path(top) / name
            rel = p.relative_to(run_dir).as_posix()
            if p.is_symlink():
                log.warning("not pushing symlink %s (a store holds plain files only)", p)
            elif not excluded(rel):
                out[rel] = hash_file(p)
    return dict(sorted(out.items()))


def dest_targets(dest: Path, rels: list[str], where: str) -> dict[str, Path]:
    """Where each stored file lands under `dest`. Refuses (before anything is written) a target whose path
    inside `dest` crosses a symlink or that would resolve outside `dest`. `dest` itself may be a symlink."""
    root = Path(dest).resolve()
    out: dict[str, Path] = {}
    for rel in rels:
        safe_relpath(rel, where=where)
        target = root / rel
        p = root
        for part in rel.split("/"):
            p = p / part
            if p.is_symlink():
                raise StoreError(f"refusing to pull {rel!r} from {where}: {p} is a symlink; nothing was written")
        if not target.resolve().is_relative_to(root):
            raise StoreError(f"refusing to pull {rel!r} from {where}: it lands outside {root}")
        out[rel] = target
    return out


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy via a temp file next to `dst` + fsync + rename: readers see the old file or the new, never half."""
    from ..fsutil import atomic_output

    with atomic_output(dst) as out, open(src, "rb") as f:
        shutil.copyfileobj(f, out, 1 << 20)


def manifest_last(rels) -> list[str]:
    """Write order: manifest.json last, so a reader that sees a new manifest also sees the files it names."""
    return sorted(rels, key=lambda r: (r == MANIFEST, r))


def read_json_file(path: Path, what: str) -> dict | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise StoreError(f"{what}: {path} is not valid JSON ({e})") from e
    if not isinstance(d, dict):
        raise StoreError(f"{what}: {path} does not hold a JSON object")
    return d


def local_manifest(run_dir: Path) -> dict:
    m = read_json_file(run_dir / MANIFEST, "run manifest")
    if m is None:
        raise StoreError(f"{run_dir} is not a run folder: {run_dir / MANIFEST} is missing")
    if not m.get("run_uid"):
        raise StoreError(
            f"{run_dir / MANIFEST}: field 'run_uid' is missing; cannot tell this run from another run with the same key"
        )
    return m


def describe(m: dict) -> str:
    machine = m.get("machine") or {}
    host = (
        machine.get("hostname")
        or machine.get("host")
        or next((s.get("host") for s in reversed(m.get("sessions") or []) if s.get("host")), None)
        or "unknown host"
    )
    when = m.get("started_at") or m.get("created_at") or "?"
    return (
        f"run_uid {m.get('run_uid')} on {host} (backend {machine.get('backend', '?')}, started {when}, "
        f"status {m.get('status', '?')})"
    )


def check_conflict(key: str, mine: dict, stored: dict | None, store_url: str, force: bool) -> None:
    """Refuse to overwrite another run: two machines running the same experiment + config get the same key."""
    if stored is None or stored.get("run_uid") == mine.get("run_uid"):
        return
    if force:
        log.warning(
            "overwriting run %s in %s: stored %s replaced by %s (--force)",
            key,
            store_url,
            describe(stored),
            describe(mine),
        )
        return
    raise StoreConflictError(
        f"run {key} in store {store_url} belongs to another run: the store holds {describe(stored)}; "
        f"this folder is {describe(mine)}. Two machines ran the same experiment and config. Pull the stored "
        "run to look at it, or push with --force to replace it."
    )


def match_experiment(key: str, experiment: int | str | None) -> bool:
    """`experiment` as 620, "620", "0620" or "0620_text2mol_fatgcn" against the key's first segment."""
    if experiment is None:
        return True
    first = key.split("/")[0]
    e = str(experiment)
    if e.isdigit():
        m = re.match(r"\d+", first)
        return m is not None and int(m.group()) == int(e)
    return first == e


def keys_from_manifest_paths(paths: list[str]) -> list[str]:
    """Run keys from the paths (relative to `runs/`) of manifest.json files; nested run folders are ignored."""
    keys = sorted(str(PurePosixPath(p).parent) for p in paths if PurePosixPath(p).name == MANIFEST)
    out: list[str] = []
    for k in keys:
        if k != "." and not any(k.startswith(o + "/") for o in out):
            out.append(k)
    return out


# --- what was last synced, and the stored index ------------------------------------------------------
# `<run>/.synced.json` (local, hidden: never pushed) holds {path: sha256} of each file as it was when last
# pushed or pulled. A file whose current hash differs from it was changed here since: pull refuses to
# overwrite it (names it), or with --force moves it to `<run>/.backups/<time>/` first.
SYNC_RECORD = ".synced.json"
BACKUPS = ".backups"
# `runs/<key>/.index.json` in a folder store: {path: {size, sha256}} of every stored file, written by push
# under the store lock; pull checks each copied byte stream against it before anything is replaced. The Hub
# store needs none: its tree lists each file's LFS sha256 (large files) or git blob id (small ones).
INDEX = ".index.json"


def read_sync_record(run_dir: Path) -> dict[str, str]:
    try:
        d = json.loads((Path(run_dir) / SYNC_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    files = d.get("files") if isinstance(d, dict) else None
    return files if isinstance(files, dict) else {}


def write_sync_record(run_dir: Path, files: dict[str, str], store_url: str, merge: bool = False) -> None:
    """Record {path: sha256} as synced with `store_url` (merged into the old record when `merge`)."""
    from .. import runs
    from ..fsutil import write_json

    if not Path(run_dir).is_dir():
        return
    record = {**read_sync_record(run_dir), **files} if merge else dict(files)
    write_json(Path(run_dir) / SYNC_RECORD, {"store": store_url, "at": runs.now_iso(), "files": record})


def changed_locally(dest: Path, targets: dict[str, Path], incoming: list[str]) -> list[str]:
    """Among the files a pull would replace, those changed here since the last push/pull (or never synced)."""
    record = read_sync_record(dest)
    return [rel for rel in incoming if targets[rel].is_file() and record.get(rel) != hash_file(targets[rel]).sha256]


def guard_local_changes(dest: Path, targets: dict[str, Path], incoming: list[str], force: bool, where: str) -> None:
    """Refuse to overwrite local changes (naming them); with `force`, move them to a dated backup first."""
    changed = changed_locally(dest, targets, incoming)
    if not changed:
        return
    if not force:
        raise StoreError(
            f"pulling {where} would overwrite {len(changed)} file(s) changed here since the last "
            f"sync: {', '.join(changed)} (in {dest}). Push them, move them away, or pull with "
            "--force to move them to a dated backup first; nothing was written"
        )
    import datetime as dt

    backup = Path(dest) / BACKUPS / dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    for rel in changed:
        (backup / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(targets[rel], backup / rel)
    log.warning("pull --force: %d locally changed file(s) kept in %s: %s", len(changed), backup, ", ".join(changed))


class Transfer:
    """Progress hooks of a push or pull (the CLI passes a Rich progress bar; the default is silent)."""

    def start(self, key: str, files: int, nbytes: int) -> None:
        pass

    def advance(self, rel: str, nbytes: int) -> None:
        pass


class Store(ABC):
    """Durable home of run folders. Implementations: LocalStore (a folder), HubStore (a Hub repo)."""

    url: str

    @abstractmethod
    def push(self, run_dir: Path, key: str, *, force: bool = False, transfer: Transfer | None = None) -> dict[str, Any]:
        """Upload what changed in `run_dir` (by size + hash). Returns a summary:
        {key, store, uploaded: [paths], deleted: [paths], unchanged: n, bytes: n, commit: id | None}.
        Raises StoreConflictError if the store holds another run (different run_uid) unless `force`."""

    @abstractmethod
    def pull(
        self,
        key: str,
        dest: Path,
        only: list[str] | None = None,
        *,
        force: bool = False,
        transfer: Transfer | None = None,
    ) -> Path:
        """Make `dest` hold the stored run's files (byte-identical), fetching only those that differ.
        `only`: subsets among "checkpoints", "predictions", "metrics". Files `dest` has and the store does
        not are left alone. Unsafe stored paths are refused, and every fetched file is checked against the
        stored hashes, before anything is written. Local files changed since the last sync are never
        overwritten: StoreError naming them, or with `force` they go to a dated backup first. Returns `dest`."""

    @abstractmethod
    def list_runs(self, experiment: int | str | None = None) -> list[dict[str, Any]]:
        """[{key, manifest}] for every stored run (of `experiment` if given), sorted by key."""

    @abstractmethod
    def read_manifest(self, key: str) -> dict | None: ...

    def exists(self, key: str) -> bool:
        return self.read_manifest(key) is not None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
