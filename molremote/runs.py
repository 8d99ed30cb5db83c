"""Runs: one (experiment, fold, config hash) execution and its folder.

A run folder has one layout everywhere (locally, in the store, on the Hub, in /kaggle/working):
    manifest.json  config.json  metrics.jsonl  checkpoints/{last,best}.pt  predictions/  submission.csv  logs/
    env/<hash>.txt (the installed packages of a session)   .lock (runlock.py; local, never stored)
The run key `<NNNN_slug>/fold<k>-<confighash>` names it in every store (`<NNNN_slug>/fold<k>-s<seed>-<confighash>`
for an experiment listing several `training.seeds`: one run per (fold, seed)); a changed config is a new run and
the old one is kept. torch-free.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EXIT_INCOMPLETE  # noqa: F401  (the exit-code table's; the trainer imports it from here)
from .project import project_root, runs_dir

if TYPE_CHECKING:  # pragma: no cover
    from .experiments import Experiment

STATUS_COMPLETE, STATUS_INCOMPLETE, STATUS_RUNNING, STATUS_FAILED = "complete", "incomplete", "running", "failed"
# shown, never stored: a run whose manifest says running but whose trainer on this host is gone (kill -9,
# power loss), and a run whose manifest cannot be read
STATUS_STOPPED, STATUS_CORRUPT = "stopped", "corrupt manifest"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write via a temp file in the same folder + fsync + rename: readers never see half a file."""
    from .fsutil import atomic_output

    with atomic_output(path) as f:
        f.write(data.encode() if isinstance(data, str) else data)


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def read_manifest(path: Path) -> dict | None:
    """A run's manifest; None when absent; ManifestError (naming the file) when it is not a JSON object."""
    from .errors import ManifestError

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        m = json.loads(text)
    except json.JSONDecodeError as e:
        m, why = None, f"not valid JSON ({e})"
    else:
        why = "" if isinstance(m, dict) else "not a JSON object"
    if why:
        raise ManifestError(
            f"{path} is {why}: the run's record (sessions, run_uid, status) is damaged. "
            "Restore it from the store (`molremote pull`), or `molremote train ... --repair` "
            "keeps it as manifest.json.corrupt-<time> and starts a new record"
        )
    return m


def shown_status(run_dir: Path, m: dict) -> str | None:
    """The status to show: `running` becomes `stopped` when the run was last run on this host and no live
    process holds its lock (killed: kill -9, a crash, power loss). A run running on another host stays
    `running` (its lock is not visible from here)."""
    from .runlock import is_locked

    status = m.get("status")
    if status != STATUS_RUNNING:
        return status
    sessions = m.get("sessions") or []
    host = (sessions[-1].get("host") if sessions else None) or (m.get("machine") or {}).get("hostname")
    if host == socket.gethostname() and not is_locked(run_dir):
        return STATUS_STOPPED
    return status


def key_for(name: str, fold: int, config_hash: str, seed: int | None = None) -> str:
    """`<name>/fold<k>-<hash>`, or `<name>/fold<k>-s<seed>-<hash>` for one seed of several."""
    return f"{name}/fold{fold}-" + (f"s{seed}-" if seed is not None else "") + config_hash


def run_key(exp: Experiment, fold: int) -> str:
    """The key of `exp`'s fold run; for an experiment with several seeds, of its `training.seed` run (pass
    `exp.with_seed(s)`)."""
    seed = exp.run_seed
    if seed is not None and seed not in (exp.training.seeds or ()):
        raise ValueError(
            f"experiment {exp.name} lists training.seeds {exp.training.seeds}: name the run with exp.with_seed(s)"
        )
    return key_for(exp.name, fold, exp.config_hash, seed)


def run_path(exp: Experiment, fold: int, root: Path | None = None) -> Path:
    return (root or runs_dir()) / run_key(exp, fold)


# ---------------------------------------------------------------------------------------------- run keys
MANIFEST = "manifest.json"
_FOLD_PART = re.compile(r"fold(\d+)-(?:s(\d+)-)?(.+)")


def key_of_dir(run_dir: Path | str) -> str:
    """`<NNNN_slug>/fold<k>-<confighash>` of a run folder: its last two path parts."""
    p = Path(run_dir)
    return f"{p.parent.name}/{p.name}"


def key_under(run_dir: Path | str, runs_root: Path | str) -> str | None:
    """A run folder's key as its path under the runs folder, or None when it lies outside it."""
    run_dir, root = Path(run_dir).absolute(), Path(runs_root).absolute()
    if run_dir.is_relative_to(root) and run_dir != root:
        return run_dir.relative_to(root).as_posix()
    return None


def parse_key(key: str) -> tuple[str, int, str] | None:
    """(experiment folder name, fold, config hash) of a run key, or None when it is not one (the seed of a
    several-seeds key: parse_key_seed)."""
    parts = parse_key_seed(key)
    return (parts[0], parts[1], parts[3]) if parts else None


def parse_key_seed(key: str) -> tuple[str, int, int | None, str] | None:
    """(experiment folder name, fold, seed or None, config hash) of a run key, or None when it is not one."""
    exp, _, last = key.rstrip("/").rpartition("/")
    m = _FOLD_PART.fullmatch(last)
    if not m:
        return None
    return exp, int(m.group(1)), int(m.group(2)) if m.group(2) is not None else None, m.group(3)


def find_run_dir(path: Path | str, levels: int = 3) -> Path | None:
    """The run folder holding `path` (a folder with manifest.json, up to `levels` parents up), if any."""
    p = Path(path).resolve()
    for d in [p.parent, *p.parents][:levels]:
        if (d / MANIFEST).is_file():
            return d
    return None


def other_config_runs(exp: Experiment, root: Path | None = None) -> list[str]:
    """Run folder names (`fold<k>-<hash>`) of `exp` made with another config hash than its current one."""
    base = (root or runs_dir()) / exp.name
    return sorted(
        {p.parent.name for p in base.glob(f"fold*-*/{MANIFEST}") if not p.parent.name.endswith(exp.config_hash)}
    )


@dataclass
class RunInfo:
    """A finished (or pulled) run folder as the results pipeline reads it."""

    path: Path
    key: str  # <NNNN_slug>/fold<k>-<confighash>
    fold: int
    manifest: dict[str, Any]
    config: dict[str, Any]

    @property
    def seed(self) -> int | None:
        """The run's seed when its experiment lists several (in its key), else None."""
        s = self.manifest.get("seed")
        return s if isinstance(s, int) else None

    @property
    def task(self) -> str | None:
        t = self.config.get("task")
        return t.get("name") if isinstance(t, dict) else t

    def prediction(self, split: str) -> Path:
        """predictions/<split>.parquet; a DataError saying how to make it when it is missing."""
        from .errors import DataError

        p = self.path / "predictions" / f"{split}.parquet"
        if not p.is_file():
            raise DataError(
                f"{p}: no {split} predictions in run {self.key} (status "
                f"{self.manifest.get('status')!r}); finish the run (`molremote train`) or pull it"
            )
        return p


def load_run(path: Path | str) -> RunInfo:
    """A run folder's manifest and config, checked for what evaluation needs (task, fold)."""
    from .errors import DataError

    path = Path(path)
    man = read_manifest(path / MANIFEST)  # ManifestError names a damaged one
    if man is None:
        raise DataError(f"{path / MANIFEST}: missing: {path} is not a run folder")
    cfg = read_json(path / "config.json") or man.get("config") or {}
    if not cfg.get("task"):
        raise DataError(f"{path / 'config.json'}: missing or has no 'task': cannot tell which metric to use")
    fold = man.get("fold")
    if not isinstance(fold, int):
        raise DataError(f"{path / MANIFEST}: field 'fold' is {fold!r}, expected an integer")
    return RunInfo(path=path, key=key_of_dir(path), fold=fold, manifest=man, config=cfg)


def code_info(root: Path | None = None) -> dict[str, Any]:
    """Commit, dirty flag and bundle hash: from the shipped bundle on a remote machine, else from git."""
    info_file = os.environ.get("MOLREMOTE_BUNDLE_INFO")
    if info_file and Path(info_file).is_file():
        b = read_json(Path(info_file)) or {}
        return {
            "commit": b.get("commit"),
            "dirty": b.get("dirty"),
            "bundle_hash": os.environ.get("MOLREMOTE_BUNDLE_SHA256") or b.get("sha256") or b.get("content_hash"),
        }
    root = root or project_root()
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
        dirty = (
            bool(
                subprocess.run(
                    ["git", "status", "--porcelain", "--untracked-files=no"],
                    cwd=root,
                    capture_output=True,
                    text=True,
                    timeout=10,
                ).stdout.strip()
            )
            if commit
            else None
        )
    except (OSError, subprocess.TimeoutExpired):
        commit, dirty = None, None
    return {"commit": commit, "dirty": dirty, "bundle_hash": None}


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "backend": os.environ.get("MOLREMOTE_BACKEND", "local"),
    }
    torch = sys.modules.get("torch")  # only report torch when the caller already imported it
    if torch is not None:
        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    for k in ("SLURM_JOB_ID", "KAGGLE_KERNEL_RUN_TYPE"):
        if k in os.environ:
            info[k.lower()] = os.environ[k]
    return info


class Run:
    """A run folder and its manifest."""

    def __init__(self, path: Path):
        self.path = Path(path)

    manifest_path = property(lambda self: self.path / "manifest.json")
    checkpoints = property(lambda self: self.path / "checkpoints")
    predictions = property(lambda self: self.path / "predictions")
    logs = property(lambda self: self.path / "logs")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")

    def manifest(self) -> dict[str, Any] | None:
        """None when absent; ManifestError when the file exists but is damaged (never silently rebuilt)."""
        return read_manifest(self.manifest_path)

    def set_corrupt_manifest_aside(self) -> Path:
        """Keep a damaged manifest as `manifest.json.corrupt-<time>` (train --repair), out of the way."""
        aside = self.path / f"manifest.json.corrupt-{dt.datetime.now().strftime('%Y%m%dT%H%M%S')}"
        os.replace(self.manifest_path, aside)
        return aside

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    @classmethod
    def create_or_open(
        cls, exp: Experiment, fold: int, *, sets: list[str] | None = None, root: Path | None = None
    ) -> Run:
        run = cls(run_path(exp, fold, root))
        m = run.manifest()
        for d in (run.path, run.checkpoints, run.predictions, run.logs):
            d.mkdir(parents=True, exist_ok=True)
        if m is None:
            m = {
                "experiment": exp.id,
                "name": exp.name,
                "fold": fold,
                "config_hash": exp.config_hash,
                "run_key": run_key(exp, fold),
                "run_uid": uuid.uuid4().hex,
                "overrides": list(sets or []),
                "created_at": now_iso(),
                "status": "created",
                "sessions": [],
                "best": None,
            }
            if exp.run_seed is not None:  # one of several seeds: part of the run's identity
                m["seed"] = exp.run_seed
            write_json(run.path / "config.json", exp.to_json())
        run.save(m)
        return run

    def save(self, m: dict[str, Any]) -> None:
        m["updated_at"] = now_iso()
        write_json(self.manifest_path, m)

    def update(self, **fields: Any) -> dict[str, Any]:
        m = self.manifest() or {}
        m.update(fields)
        self.save(m)
        return m

    def start_session(self) -> dict[str, Any]:
        m = self.manifest() or {}
        m["code"] = code_info()
        m["machine"] = machine_info()
        m.setdefault("started_at", now_iso())
        m["status"] = STATUS_RUNNING
        m["ended_at"] = None
        from .provenance import accelerators, environment

        # provenance to rerun it: the result-shaping package versions, the whole installed set (by hash, its
        # list kept in env/<hash>.txt beside the manifest) and the accelerators
        m.setdefault("sessions", []).append(
            {
                "started_at": now_iso(),
                "host": m["machine"]["hostname"],
                "backend": m["machine"]["backend"],
                "code": m["code"],
                "env": environment(self.path),
                "accelerators": accelerators(),
            }
        )
        self.save(m)
        return m

    def end_session(self, status: str, **fields: Any) -> dict[str, Any]:
        m = self.manifest() or {}
        m.update(fields)
        m["status"] = status
        if m.get("sessions"):
            m["sessions"][-1].update(ended_at=now_iso(), status=status)
        if status == STATUS_COMPLETE:
            m["ended_at"] = now_iso()
        self.save(m)
        return m


def iter_local_runs(root: Path | None = None, experiment: int | None = None) -> Iterator[tuple[Path, dict]]:
    """(run folder, manifest) for every local run, newest-updated last; the manifest's status is the one to
    show (`stopped` for a killed run, `corrupt manifest` for an unreadable one)."""
    base = root or runs_dir()
    if not base.is_dir():
        return iter(())
    pattern = f"{experiment:04d}_*/fold*/manifest.json" if experiment is not None else "*/fold*/manifest.json"
    found = []
    from .errors import ManifestError

    for p in base.glob(pattern):
        try:
            m = read_manifest(p)
        except ManifestError as e:  # shown as such, not skipped: `ls` must not hide a damaged run
            digits = p.parent.parent.name.split("_")[0]
            m = {"experiment": int(digits) if digits.isdigit() else None, "status": STATUS_CORRUPT, "error": str(e)}
        if m is not None:
            found.append((p.parent, {**m, "status": shown_status(p.parent, m)}))
    found.sort(key=lambda t: t[1].get("updated_at") or "")
    return iter(found)
