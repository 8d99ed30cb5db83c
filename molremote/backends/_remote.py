"""What the ssh and slurm backends share: options, the remote folder layout, rendering, shipping, and the
submission flow itself (`RemoteBackend`, after submitit's executor): render -> ship -> submit -> record, and
ship-back of the run folders, written once. A backend supplies small hooks: `render` (the script text),
`submit_command` (what starts the job in its folder), `parse_submission` (the job handle from the command's
output), `status` (asking for state) and `log_command` (how to read each fold's log from a byte offset).

Remote layout under `remote_root` (default `~/.molremote`, on a filesystem the compute nodes share):
    bundles/bundle-<sha16>.tar.gz   code/<sha16>/ (unpacked once per bundle)
    venvs/<deps_hash>/ (one per dependency set, reused)   jobs/<job_id>/ (rendered files, logs, runs/)
"""

from __future__ import annotations

import hashlib
import json
import shlex
import tempfile
import time
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from ..errors import BackendError
from ..jobs import JobRecord
from .base import Backend, Job, Options, render_template
from .shell import Shell

# Default trainer command: the package runs from the unpacked bundle (PYTHONPATH), not from an install, so
# venvs hold dependencies only and are shared by every code version with the same dependency set.
MAIN = "import sys; from molremote.cli import main; sys.argv[0] = 'molremote'; main()"


class RemoteOptions(Options):
    host: str | None = None  # ssh destination; for slurm the login host (None: sbatch on this machine)
    ssh_config: str | None = None  # ssh -F file (default: ~/.ssh/config)
    remote_root: str = "~/.molremote"
    python: str = "python3"  # the host's interpreter that creates venvs
    venv: str | None = None  # an existing venv on the host: used as is, nothing installed
    extras: list[str] = ["train"]  # pyproject optional dependency sets installed in the venv
    train_cmd: str | None = None  # shell command replacing the trainer ($PY, $FOLD, $JOB_DIR are set)
    tail_lines: int = 30
    poll_s: float = 2.0  # `logs -f`: seconds between reads while the job runs
    # `remote --resume JOB`: an earlier job in the same remote root whose run folders this job takes over
    # (moved into it before each fold trains, then resumed from their last checkpoint)
    resume_job: str | None = None


def deps_hash(job: Job, o: RemoteOptions) -> tuple[str, str]:
    """(requirements.txt text, hash naming the venv): same dependency set + interpreter -> same venv."""
    reqs = "".join(f"{r}\n" for r in job.bundle.requirements(o.extras))
    return reqs, hashlib.sha256(f"{o.python}\n{reqs}".encode()).hexdigest()[:16]


def trainer_args(job: Job) -> str:
    """`-c MAIN train ...`: what follows "$PY" (or torchrun's --no-python "$PY") to run the trainer."""
    return (
        f'-c {shlex.quote(MAIN)} train --experiment-json "$JOB_DIR/experiment.json" --fold "$FOLD" --no-progress'
        + "".join(" " + shlex.quote(a) for a in job.train_args)
    )


def train_cmd(job: Job, o: RemoteOptions) -> str:
    if o.train_cmd:
        return o.train_cmd
    quoted = trainer_args(job)
    if job.gpus > 1:  # `train --gpus N` runs torchrun itself, forwards signals, and exits 75/0 from the manifest
        return f'"$PY" {quoted} --gpus {int(job.gpus)}'
    return f'"$PY" {quoted}'


def render_common(job: Job, o: RemoteOptions, backend: str) -> tuple[str, dict[str, str]]:
    """The shared shell helpers and the side files every remote job folder holds."""
    reqs, dh = deps_hash(job, o)
    common = render_template(
        "remote_common.sh",
        bundle_sha=job.bundle.sha256,
        deps_hash=dh,
        python=shlex.quote(o.python),
        venv=shlex.quote(o.venv or ""),
        job_id=shlex.quote(job.job_id),
        backend=backend,
        resume_job=shlex.quote(o.resume_job or ""),
        run_dir=shlex.quote(f"{int(job.experiment['id']):04d}_{job.experiment['slug']}"),
        config_hash=shlex.quote(str(job.experiment["config_hash"])),
    )
    files = {"experiment.json": json.dumps(job.experiment, indent=1, sort_keys=True) + "\n", "requirements.txt": reqs}
    return common.strip(), files


def job_dir(o: RemoteOptions, job_id: str) -> str:
    return f"{o.remote_root.rstrip('/')}/jobs/{job_id}"


def ship(shell: Shell, job: Job, o: RemoteOptions, rendered: dict[str, str]) -> str:
    """Copy the bundle (once per bundle) and the rendered files to the host; return the job folder path."""
    root = o.remote_root.rstrip("/")
    bundle_dst = f"{root}/bundles/{job.bundle.path.name}"
    have = shell.run(f"test -f {shlex.quote(shell.path(bundle_dst))} && echo yes || true", what="checking the bundle")
    if have.stdout.strip() != "yes":
        if not Path(job.bundle.path).exists():
            raise BackendError(f"bundle {job.bundle.path} is missing locally")
        shell.put([Path(job.bundle.path)], f"{root}/bundles", what="copying the code bundle")
    jd = job_dir(o, job.job_id)
    with tempfile.TemporaryDirectory(prefix="molremote-job-") as tmp:  # staging only: rsync copies it away
        paths = []
        for name, text in rendered.items():
            p = Path(tmp) / name
            p.write_text(text)
            p.chmod(0o755 if name.endswith((".sh", ".sbatch")) else 0o644)
            paths.append(p)
        shell.put(paths, jd, what="copying the job files")
    return jd


def options_for_record(o: RemoteOptions) -> dict[str, Any]:
    return o.model_dump(exclude_none=True)


RO = TypeVar("RO", bound=RemoteOptions)


class RemoteBackend(Backend[RO]):
    """The flow every shell-reached backend shares; subclasses give the hooks below (and their `Options`)."""

    per_fold_logs = True  # False: one log for the whole job (ssh runs its folds one after the other)

    # ------------------------------------------------------------------------------------------- hooks
    @abstractmethod
    def submit_command(self, job_dir: str) -> str:
        """The shell command (run on the host) that starts the job whose files are in `job_dir`."""

    @abstractmethod
    def parse_submission(self, stdout: str, o: RO) -> tuple[dict[str, Any], str, str]:
        """From the submit command's output: (handle fields, initial state, detail)."""

    @abstractmethod
    def log_command(self, record: JobRecord, job_dir: str, fold: int, offset: int) -> str:
        """A shell command printing fold `fold`'s log from byte `offset` (nothing when there is none yet)."""

    # ------------------------------------------------------------------------------------------- flow
    def _shell(self, o: RO) -> Shell:
        return Shell(host=o.host, ssh_config=o.ssh_config)

    def _for(self, record: JobRecord) -> tuple[RO, Shell, str]:
        """(options, shell, quoted job folder as the host sees it) for a launched job."""
        o = self._parse(record.options)
        shell = self._shell(o)
        return o, shell, shlex.quote(shell.path(record.handle["job_dir"]))

    def launch(self, job: Job) -> JobRecord:
        from .. import jobs

        o = self.job_options(job)
        shell = self._shell(o)
        jd = ship(shell, job, o, self.render(job))
        cp = shell.run(self.submit_command(shlex.quote(shell.path(jd))), what=f"starting the {self.name} job")
        handle, state, detail = self.parse_submission(cp.stdout, o)
        rec = job.new_record(self.name, {"host": o.host, "job_dir": jd, **handle}, options_for_record(o))
        rec.state, rec.detail = state, detail
        jobs.save(rec)
        return rec

    def logs(self, record: JobRecord, follow: bool = False, fold: int | None = None) -> Iterator[str]:
        """Each fold's log (all folds, or `fold`), from where the last read stopped; with `follow`, until the
        job ends. One round trip per read: a NUL-separated chunk per fold."""
        o, shell, jd = self._for(record)
        folds = [fold] if fold is not None else list(record.folds)
        offsets = {f: 0 for f in folds}
        many = len(folds) > 1 and self.per_fold_logs
        keys = folds if self.per_fold_logs else folds[:1]
        while True:
            finished = (self.status(record).state not in ("pending", "running")) if follow else True
            script = "; ".join(
                f"{{ {self.log_command(record, jd, f, offsets[f])}; }} 2>/dev/null; printf '\\0'" for f in keys
            )
            out = shell.run(script, check=False, what="reading logs").stdout.split("\0")
            got = False
            for f, chunk in zip(keys, out):
                if chunk:
                    got = True
                    offsets[f] += len(chunk.encode())
                    yield (f"==> fold {f} <==\n" if many else "") + chunk
            if finished:
                return
            if not got:
                time.sleep(o.poll_s)

    def fetch(self, record: JobRecord, dest: Path) -> Path:
        o, shell, jd = self._for(record)
        has = shell.run(f"test -d {jd}/runs && echo yes || true", what="checking runs")
        if has.stdout.strip() != "yes":
            where = f" on {record.handle.get('host')}" if record.handle.get("host") else ""
            raise BackendError(f"job {record.job_id} has no run folders yet{where}")
        shell.get(f"{record.handle['job_dir']}/runs", Path(dest), what=f"fetching runs of {record.job_id}")
        return Path(dest)
