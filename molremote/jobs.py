"""Job records: what was launched where, one JSON file per job under `<project>/.molremote/jobs/`.

Every backend (kaggle, ssh, slurm) saves a `JobRecord` when it launches, so `molremote status`
lists all jobs in one table and `logs`/`cancel`/`pull` find their way back from any shell. One file per
job (not one shared JSONL) so concurrent launches and status refreshes never rewrite each other's lines;
each file is written atomically. torch-free.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import BackendError, UsageError
from .project import project_root
from .runs import now_iso, write_json
from .secrets import redact

STATES = ("pending", "running", "complete", "incomplete", "failed", "cancelled")
TERMINAL = ("complete", "incomplete", "failed", "cancelled")


@dataclass
class JobRecord:
    job_id: str
    backend: str  # kaggle | ssh | slurm
    experiment: str  # NNNN_slug
    experiment_id: int
    config_hash: str
    folds: list[int]
    created_at: str = field(default_factory=now_iso)
    seed: int | None = None  # the one seed a job trains (Kaggle: a kernel per (fold, seed)); None: every seed
    updated_at: str = field(default_factory=now_iso)
    state: str = "pending"
    detail: str = ""
    bundle_sha256: str | None = None
    commit: str | None = None
    dirty: bool | None = None
    # how the backend finds the job again: e.g. {"host", "job_dir", "slurm_job_id"} or {"kernel"}
    handle: dict[str, Any] = field(default_factory=dict)
    # backend settings needed to rebuild the backend object for status/logs/cancel/fetch (no secrets)
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JobRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def new_job_id(experiment: str, backend: str) -> str:
    """Unique, sortable by time, readable: `0620_fatgcn-slurm-20261101T120000-3fa2`."""
    stamp = now_iso().replace("-", "").replace(":", "")[:15]
    return f"{experiment}-{backend}-{stamp}-{secrets.token_hex(2)}"


def jobs_dir(root: Path | None = None) -> Path:
    return Path(os.environ.get("MOLREMOTE_JOBS") or (root or project_root()) / ".molremote" / "jobs")


def save(record: JobRecord, root: Path | None = None) -> Path:
    path = jobs_dir(root) / f"{record.job_id}.json"
    # masked: an error detail or handle quoting a URL or destination never stores a password or token
    write_json(path, redact(record.to_json(), keys=False))
    return path


def load(job_id: str, root: Path | None = None) -> JobRecord:
    path = jobs_dir(root) / f"{job_id}.json"
    try:
        return JobRecord.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        raise BackendError(f"no job '{job_id}' in {jobs_dir(root)}") from None
    except (json.JSONDecodeError, TypeError) as e:
        raise BackendError(f"{path}: unreadable job record ({e})") from e


def load_all(root: Path | None = None, experiment: str | int | None = None) -> list[JobRecord]:
    """All job records, oldest first; `experiment` filters by id or NNNN_slug. Unreadable files are skipped."""
    d = jobs_dir(root)
    out = []
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            r = JobRecord.from_json(json.loads(p.read_text()))
        except (json.JSONDecodeError, TypeError):
            continue
        if (
            experiment is None
            or r.experiment == experiment
            or str(r.experiment_id) == str(experiment)
            or (isinstance(experiment, int) and r.experiment_id == experiment)
        ):
            out.append(r)
    return sorted(out, key=lambda r: (r.created_at, r.job_id))


def update(record: JobRecord, root: Path | None = None, **changes: Any) -> JobRecord:
    """Return and save a copy of `record` with `changes` and a new `updated_at`."""
    if "state" in changes and changes["state"] not in STATES:
        raise BackendError(f"unknown job state '{changes['state']}' (known: {', '.join(STATES)})")
    new = replace(record, **changes, updated_at=now_iso())
    save(new, root)
    return new


def latest(experiment: str | int, backend: str | None = None, root: Path | None = None) -> JobRecord:
    """The most recent job of an experiment (optionally of one backend): for `logs -e N`, `pull -e N`."""
    jobs = [j for j in load_all(root, experiment) if backend is None or j.backend == backend]
    if not jobs:
        raise BackendError(
            f"no job for experiment {experiment}" + (f" on {backend}" if backend else "") + f" in {jobs_dir(root)}"
        )
    return jobs[-1]


def find(experiment: int | None, job_id: str | None, *, active: bool = False, root: Path | None = None) -> JobRecord:
    """The job a command means: `job_id` if given, else the experiment's latest job (with `active`, its
    latest unfinished one when there is one)."""
    if job_id:
        return load(job_id, root)
    if experiment is None:
        raise UsageError("name the job: -e EXPERIMENT (its latest job) or --job JOB_ID (see `molremote status`)")
    recs = load_all(root, experiment=experiment)
    if active:
        recs = [r for r in recs if r.state not in TERMINAL] or recs
    if not recs:
        raise BackendError(
            f"no job of experiment {experiment} in {jobs_dir(root)} (launch one with `molremote remote`)"
        )
    return recs[-1]


def latest_per_run(records: list[JobRecord]) -> list[JobRecord]:
    """Per (experiment, folds, backend) the latest job, plus every unfinished one; order kept."""
    latest_ids = {(r.experiment, tuple(r.folds), r.backend): r.job_id for r in records}
    keep = set(latest_ids.values())
    return [r for r in records if r.job_id in keep or r.state not in TERMINAL]
