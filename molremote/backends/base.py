"""The one backend protocol (submitit / SkyPilot style), shared by kaggle, ssh and slurm.

    render(job)  -> {relative path: text}   pure: what `--dry-run` prints; golden-file tested
    launch(job)  -> JobRecord               ships the bundle + rendered files, starts, saves the record
    status(rec)  -> JobStatus               pending|running|complete|incomplete|failed|cancelled (+ log tail)
    logs(rec, follow, fold) -> iter of str   log text chunks (all folds or one); with follow, until the job ends
    fetch(rec, dest)  -> Path                run folders copied into `dest` (the local runs dir)
    cancel(rec)                               stop it; status then reads cancelled

ssh and slurm share the submission flow in `_remote.RemoteBackend` (hooks: script text, submit command, job id
from its output, state); `molremote.launching` turns an experiment into jobs for any backend. Each backend
reaches its external system through one narrow function (`Shell.run` for ssh and slurm, `KaggleClient` for
Kaggle), so tests run it against the real thing on loopback. torch-free.
"""

from __future__ import annotations

import string
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ..bundle import BundleInfo
from ..errors import BackendError
from ..jobs import JobRecord


@dataclass(frozen=True)
class Job:
    """What to run: a resolved experiment, which folds, on how many GPUs, with which code."""

    job_id: str
    experiment: dict[str, Any]  # Experiment.to_json(): remote machines never import experiments/*.py
    folds: list[int]
    bundle: BundleInfo
    gpus: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # per-job overrides of backend options
    # extra arguments for `molremote train` (e.g. ["--max-time", "11h"]); shell-quoted when rendered
    train_args: list[str] = field(default_factory=list)
    # the one seed this job trains (Kaggle: one kernel per (fold, seed)); None: every seed of its folds, or
    # the experiment lists none
    seed: int | None = None

    @property
    def name(self) -> str:
        return f"{int(self.experiment['id']):04d}_{self.experiment['slug']}"

    def new_record(self, backend: str, handle: dict[str, Any], options: dict[str, Any]) -> JobRecord:
        return JobRecord(
            job_id=self.job_id,
            backend=backend,
            experiment=self.name,
            experiment_id=int(self.experiment["id"]),
            config_hash=self.experiment.get("config_hash", ""),
            folds=list(self.folds),
            seed=self.seed,
            bundle_sha256=self.bundle.sha256,
            commit=self.bundle.commit,
            dirty=self.bundle.dirty,
            handle=handle,
            options=options,
        )


@dataclass
class JobStatus:
    state: str  # pending | running | complete | incomplete | failed | cancelled
    detail: str = ""
    log_tail: str = ""
    tasks: dict[int, str] = field(default_factory=dict)  # per fold, where the backend knows


class Options(BaseModel):
    """Backend settings; unknown keys fail naming the key (pydantic extra=forbid)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_secrets(self) -> Options:
        # A password or token in a destination or URL would reach the rendered script/kernel and job record.
        from .. import secrets

        if hit := secrets.first_secret(self.model_dump()):
            raise BackendError(
                f"backend option '{hit[0]}' ({hit[1]!r}) holds a {hit[2]}; it is refused: {secrets.WHERE_SECRETS_GO}"
            )
        return self


# a backend's own Options subclass: `class SshBackend(RemoteBackend[SshOptions])` types `self.options` and
# `job_options()` as SshOptions
OptionsT = TypeVar("OptionsT", bound=Options)


class Backend(ABC, Generic[OptionsT]):
    name: ClassVar[str]
    Options: type[OptionsT]  # the class itself (set in each backend's class body); not ClassVar: it holds a type var
    options: OptionsT

    def __init__(self, **options: Any):
        self.options = self._parse(options)

    @classmethod
    def _parse(cls, options: dict[str, Any]) -> OptionsT:
        try:
            return cls.Options(**{k: v for k, v in options.items() if v is not None})
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            raise BackendError(f"{cls.name} backend option '{loc}': {err['msg']}") from None

    def job_options(self, job: Job) -> OptionsT:
        """Backend options with the job's per-job overrides applied."""
        if not job.options:
            return self.options
        return self._parse({**self.options.model_dump(), **job.options})

    @abstractmethod
    def render(self, job: Job) -> dict[str, str]: ...

    @abstractmethod
    def launch(self, job: Job) -> JobRecord: ...

    @abstractmethod
    def status(self, record: JobRecord) -> JobStatus: ...

    @abstractmethod
    def logs(self, record: JobRecord, follow: bool = False, fold: int | None = None) -> Iterator[str]: ...

    @abstractmethod
    def fetch(self, record: JobRecord, dest: Path) -> Path: ...

    @abstractmethod
    def cancel(self, record: JobRecord) -> None: ...


# ------------------------------------------------------------------------------------------- templates
class _Template(string.Template):
    """`@{name}` placeholders only: shell scripts are full of `$` and `${...}` that must pass through."""

    delimiter = "@"
    # a str, as string.Template wants: its __init_subclass__ compiles it (typeshed types the compiled result)
    pattern = r"@(?:(?P<escaped>@)|\{(?P<braced>[a-z_][a-z0-9_]*)\}|(?P<named>(?!))|(?P<invalid>(?!)))"  # type: ignore[assignment]


def templates_dir() -> Path:
    """`molremote/templates/`, inside the package so a wheel carries it (`kernels_templates/` at the repository
    root is a symlink to it)."""
    d = Path(__file__).resolve().parents[1] / "templates"
    if not d.is_dir():
        raise BackendError(f"templates folder {d} not found: the molremote install is incomplete")
    return d


def render_template(name: str, **values: Any) -> str:
    path = templates_dir() / name
    try:
        return _Template(path.read_text()).substitute({k: str(v) for k, v in values.items()})
    except KeyError as e:
        raise BackendError(f"template {path}: no value for placeholder @{{{e.args[0]}}}") from None


# ------------------------------------------------------------------------------------------- helpers
def follow_text(
    read_from: Callable[[int], bytes], done: Callable[[], bool], follow: bool, poll_s: float = 2.0
) -> Iterator[str]:
    """Yield a growing log: read from byte offset, and with `follow` poll until `done()` (then a last read)."""
    offset = 0
    while True:
        finished = done() if follow else True
        chunk = read_from(offset)
        if chunk:
            offset += len(chunk)
            yield chunk.decode(errors="replace")
        if finished:
            return
        if not chunk:
            time.sleep(poll_s)


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])
