"""What the ssh and slurm backends share: options, the remote folder layout, rendering, shipping.

Remote layout under `remote_root` (default `~/.molremote`, on a filesystem the compute nodes share):
    bundles/bundle-<sha16>.tar.gz   code/<sha16>/ (unpacked once per bundle)
    venvs/<deps_hash>/ (one per dependency set, reused)   jobs/<job_id>/ (rendered files, logs, runs/)
"""
from __future__ import annotations

import hashlib
import json
import shlex
import tempfile
from pathlib import Path
from typing import Any

from ..errors import BackendError
from .base import Job, Options, render_template
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


def deps_hash(job: Job, o: RemoteOptions) -> tuple[str, str]:
    """(requirements.txt text, hash naming the venv): same dependency set + interpreter -> same venv."""
    reqs = "".join(f"{r}\n" for r in job.bundle.requirements(o.extras))
    return reqs, hashlib.sha256(f"{o.python}\n{reqs}".encode()).hexdigest()[:16]


def trainer_args(job: Job) -> str:
    """`-c MAIN train ...`: what follows "$PY" (or torchrun's --no-python "$PY") to run the trainer."""
    return (f'-c {shlex.quote(MAIN)} train --experiment-json "$JOB_DIR/experiment.json" --fold "$FOLD" --no-progress'
            + "".join(" " + shlex.quote(a) for a in job.train_args))


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
    common = render_template("remote_common.sh", bundle_sha=job.bundle.sha256, deps_hash=dh,
                             python=shlex.quote(o.python), venv=shlex.quote(o.venv or ""),
                             job_id=shlex.quote(job.job_id), backend=backend)
    files = {"experiment.json": json.dumps(job.experiment, indent=1, sort_keys=True) + "\n",
             "requirements.txt": reqs}
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
    with tempfile.TemporaryDirectory(prefix="molremote-job-") as tmp:
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
