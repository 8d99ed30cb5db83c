"""SLURM backend: one array job per launch, one array task per fold (task id = fold number).

`sbatch --parsable` runs here or over ssh on a login host (`host=`). The rendered script
(kernels_templates/slurm.sbatch) unpacks the bundle, sets up the venv, runs the trainer, forwards the
USR1 that `--signal=B:USR1@<margin>` sends before the time limit, and requeues the task on exit 75 while
SLURM_RESTART_COUNT < max_restarts; the requeued task resumes from the checkpoint.

Several nodes or GPUs (`nodes` > 1 or `gpus` > 1): `--nodes=N --ntasks-per-node=G --gpus-per-node=G`, and the
trainer runs as one srun step with a task per process (G per node, or `gpus` gloo processes on CPU), ranked by
SLURM (SLURM_PROCID) and meeting at rank 0's TCP store on the first node (kernels_templates/slurm_ddp.sh); no
torchrun. USR1 goes to srun, which relays it; the run's manifest maps srun's exit code to 75 or 0 so
requeueing still works.

status: squeue for live tasks, then the exit files each task leaves (state/fold<k>.exit), then sacct;
clusters with accounting disabled (sacct fails) are handled, `accounting=False` skips sacct entirely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import EXIT_INCOMPLETE, BackendError
from ..jobs import JobRecord
from . import _remote
from .base import Job, JobStatus, render_template

PENDING = {
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESV_DEL_HOLD",
    "RESIZING",
    "SPECIAL_EXIT",
}
RUNNING = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"}
INCOMPLETE = {"TIMEOUT", "PREEMPTED"}  # killed at the limit / preempted: resumable from the last checkpoint
TIME_RE = re.compile(r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$")
# srun's "srun: error: <node>: task <n>: ..." lines of a log's last attempt (attempts append to one log)
_SRUN_ERRORS = (
    'awk -v f="$f" \'/^\\[molremote [0-9:]+\\] slurm job /{n=0} /^srun: error: /{a[n++]=$0} '
    'END{for(i=0;i<n;i++) print f" "a[i]}\' "$f"'
)


class SlurmOptions(_remote.RemoteOptions):
    # None: the experiment's backend.slurm defaults
    partition: str | None = None
    account: str | None = None
    time: str | None = None  # [D-]HH:MM:SS
    cpus: int | None = None
    mem: str | None = None
    gpus: int | None = None  # per node; with several nodes or gpus > 1, processes per node (gloo ones on CPU)
    nodes: int | None = None
    signal_margin_s: int | None = None
    max_restarts: int | None = None
    sbatch_extra: list[str] = []  # extra "#SBATCH" arguments, e.g. ["--qos=long", "--constraint=a100"]
    accounting: bool = True  # False on clusters where sacct is disabled


def _time_s(t: str) -> int:
    """SLURM's [D-]HH:MM:SS (also MM, MM:SS, HH:MM:SS) in seconds."""
    days, _, rest = t.rpartition("-")
    parts = [int(x) for x in rest.split(":")]
    h, m, sec = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
    return int(days or 0) * 86400 + h * 3600 + m * 60 + sec


@dataclass(frozen=True)
class SlurmResources:
    """What the sbatch script asks SLURM for: the options over the experiment's backend.slurm defaults."""

    time: str
    nodes: int
    gpus: int  # per node; with several nodes or gpus > 1, processes per node (gloo ones on CPU)
    cpus: int
    signal_margin_s: int
    max_restarts: int
    partition: str | None = None
    account: str | None = None
    mem: str | None = None

    @property
    def ddp(self) -> bool:
        return self.nodes > 1 or self.gpus > 1


def resources(job: Job, o: SlurmOptions) -> SlurmResources:
    d = dict(job.experiment.get("backend", {}).get("slurm", {}))
    for k in ("partition", "account", "time", "cpus", "mem", "gpus", "nodes", "signal_margin_s", "max_restarts"):
        if getattr(o, k) is not None:
            d[k] = getattr(o, k)
    if job.gpus:
        d["gpus"] = job.gpus
    time_limit = str(d.get("time") or "01:00:00")
    if not TIME_RE.match(time_limit):
        raise BackendError(f"slurm time '{time_limit}' is not [D-]HH:MM:SS")
    # A margin as long as the limit (the 300 s default on a 5-minute job) would send USR1 at the start and
    # stop the trainer at once: then halve the limit instead. (SLURM checks limits every ~30 s, so shorter
    # margins than that are unreliable anyway.)
    limit = _time_s(time_limit)
    margin = int(d.get("signal_margin_s") or 300)
    nodes = int(1 if d.get("nodes") is None else d["nodes"])
    gpus = int(d.get("gpus") or 0)
    if nodes < 1 or gpus < 0:
        raise BackendError(f"slurm nodes={nodes} gpus={gpus}: need nodes >= 1 and gpus >= 0")
    return SlurmResources(
        time=time_limit,
        nodes=nodes,
        gpus=gpus,
        cpus=int(d.get("cpus") or 4),
        signal_margin_s=limit // 2 if margin >= limit else margin,
        max_restarts=int(d["max_restarts"] if d.get("max_restarts") is not None else 5),
        partition=d.get("partition") or None,
        account=d.get("account") or None,
        mem=d.get("mem") or None,
    )


def _gpus_to_request(job: Job, r: SlurmResources) -> int:
    """GPUs per node to ask SLURM for: none for an experiment pinned to the CPU, where `gpus` counts gloo
    processes (as `molremote train --gpus N` does on a CPU-only machine)."""
    return 0 if job.experiment.get("training", {}).get("device") == "cpu" else r.gpus


def _srun_ddp(job: Job, r: SlurmResources) -> tuple[str, str, str]:
    """(helpers block, launch command, exit-code mapping) for the srun path: one srun task per process."""
    nproc = _nproc(r)
    ranks = "rank $RANK" if nproc == 1 else f"ranks $RANK-$((RANK + {nproc - 1}))"
    block = render_template("slurm_ddp.sh", nodes=r.nodes, nproc=nproc, ranks=ranks, trainer=_remote.trainer_args(job))
    # no --kill-on-bad-exit: a node whose ranks stop first must not kill rank 0 while it writes the checkpoint
    gres = _gpus_to_request(job, r)
    launch = (
        f'srun --nodes="$SLURM_NNODES" --ntasks-per-node={nproc} --cpus-per-task="$SLURM_CPUS_PER_TASK" '
        + (f"--gpus-per-node={gres} " if gres else "")
        + "bash -c rank_main"
    )
    return "\n\n" + block.strip(), launch, '; RC=$(ddp_exit "$RC")'


def _nproc(r: SlurmResources) -> int:
    """Processes (srun tasks) per node: one per GPU, or `gpus` gloo processes on CPU; at least one."""
    return max(r.gpus, 1)


def _state(slurm_state: str, exit_code: int | None = None) -> str:
    s = slurm_state.split()[0].rstrip("+")
    if s in PENDING:
        return "pending"
    if s in RUNNING:
        return "running"
    if s == "COMPLETED":
        return "complete"
    if s == "CANCELLED":
        return "cancelled"
    if s in INCOMPLETE or (s == "FAILED" and exit_code == EXIT_INCOMPLETE):
        return "incomplete"
    return "failed"


def _overall(tasks: dict[int, str]) -> str:
    states = set(tasks.values())
    for s in ("running", "pending", "failed", "cancelled", "incomplete"):
        if s in states:
            return s
    return "complete"


class SlurmBackend(_remote.RemoteBackend[SlurmOptions]):
    name = "slurm"
    Options = SlurmOptions

    # ------------------------------------------------------------------------------------------- hooks
    def render(self, job: Job) -> dict[str, str]:
        o = self.job_options(job)
        r = resources(job, o)
        common, files = _remote.render_common(job, o, self.name)
        d = [f"--job-name=mr-{job.name}"]
        d += [f"--partition={r.partition}"] if r.partition else []
        d += [f"--account={r.account}"] if r.account else []
        d += [
            f"--time={r.time}",
            f"--nodes={r.nodes}",
            f"--ntasks-per-node={_nproc(r)}" if r.ddp else "--ntasks=1",
            # cpus is per node: shared by the node's processes
            f"--cpus-per-task={max(1, r.cpus // _nproc(r)) if r.ddp else r.cpus}",
        ]
        d += [f"--mem={r.mem}"] if r.mem else []  # per node
        gres = _gpus_to_request(job, r)
        if gres:
            d += [f"--gpus-per-node={gres}"] if r.ddp else [f"--gres=gpu:{gres}"]
        # B: the signal goes to the batch shell (which forwards it); without B: only srun steps get it
        d += [
            f"--signal=B:USR1@{r.signal_margin_s}",
            "--requeue",
            "--open-mode=append",
            "--output=slurm-%A_%a.out",
            f"--array={','.join(str(f) for f in job.folds)}",
        ]
        d += list(o.sbatch_extra)
        directives = "\n".join(f"#SBATCH {x}" for x in d)
        block, launch, map_rc = _srun_ddp(job, r) if r.ddp and not o.train_cmd else ("", _remote.train_cmd(job, o), "")
        script = render_template(
            "slurm.sbatch",
            directives=directives,
            job_id=job.job_id,
            experiment=job.name,
            max_restarts=r.max_restarts,
            common=common,
            ddp=block,
            train_cmd=launch,
            map_rc=map_rc,
        )
        return {"job.sbatch": script, **files}

    def submit_command(self, job_dir: str) -> str:
        return f"cd {job_dir} && sbatch --parsable job.sbatch"

    def parse_submission(self, stdout: str, o: SlurmOptions) -> tuple[dict, str, str]:
        sid = (stdout.strip().splitlines() or [""])[-1].split(";")[0]
        if not sid.isdigit():
            raise BackendError(f"sbatch answered '{stdout.strip()}', expected a job id")
        return {"slurm_job_id": sid}, "pending", f"slurm job {sid}" + (f" on {o.host}" if o.host else "")

    def log_command(self, record: JobRecord, job_dir: str, fold: int, offset: int) -> str:
        return f"tail -c +{offset + 1} {job_dir}/slurm-{record.handle['slurm_job_id']}_{fold}.out"

    def status(self, record: JobRecord) -> JobStatus:
        o, shell, jd = self._for(record)
        sid = record.handle["slurm_job_id"]
        sacct = (
            f"sacct -n -P -X -j {sid} -o JobID,State,ExitCode 2>&1 || echo SACCT_FAILED"
            if o.accounting
            else "echo SACCT_OFF"
        )
        # one round trip: live queue, task exit files, accounting, cancel marker, log tails
        script = (
            f"cd {jd} || exit 3; echo '== squeue'; squeue -h -r -j {sid} -o '%i|%T|%r' 2>/dev/null; "
            f'echo \'== exits\'; for f in state/fold*.exit; do [ -f "$f" ] && echo "$f $(cat $f)"; done; '
            f"echo '== sacct'; {sacct}; echo '== cancelled'; [ -f cancelled ] && echo yes; "
            f"echo '== srun'; for f in slurm-{sid}_*.out; do [ -f \"$f\" ] && {_SRUN_ERRORS}; done; "
            f"echo '== log'; for f in slurm-{sid}_*.out; do [ -f \"$f\" ] && "
            f'{{ echo "==> $f <=="; tail -n {o.tail_lines} "$f"; }}; done; true'
        )
        cp = shell.run(script, check=False, what="reading job status")
        if cp.returncode == 3:
            return JobStatus("failed", f"job folder {record.handle['job_dir']} not found")
        sec: dict[str, list[str]] = {}
        cur = None
        for line in cp.stdout.splitlines():
            if line.startswith("== ") and line[3:] in ("squeue", "exits", "sacct", "cancelled", "srun", "log"):
                cur = line[3:]
                sec[cur] = []
            elif cur:
                sec[cur].append(line)
        cancelled = "yes" in sec.get("cancelled", [])
        tasks: dict[int, str] = {}
        reasons: dict[int, str] = {}
        for line in sec.get("squeue", []):
            parts = line.split("|")
            if len(parts) == 3 and "_" in parts[0] and parts[0].split("_")[1].isdigit():
                f = int(parts[0].split("_")[1])
                tasks[f] = _state(parts[1])
                reasons[f] = parts[1] + (f" ({parts[2]})" if parts[2] not in ("", "None") else "")
        for line in sec.get("exits", []):
            m = re.match(r"state/fold(\d+)\.exit (-?\d+)$", line)
            if m and int(m[1]) not in tasks:
                code = int(m[2])
                f = int(m[1])
                tasks[f] = "complete" if code == 0 else "incomplete" if code == EXIT_INCOMPLETE else "failed"
                reasons[f] = f"exit {code}"
        sacct_lines = sec.get("sacct", [])
        sacct_ok = not any(x in ("SACCT_FAILED", "SACCT_OFF") for x in sacct_lines)
        if sacct_ok:
            for line in sacct_lines:
                parts = line.split("|")
                if len(parts) == 3 and parts[0].startswith(f"{sid}_") and parts[0].split("_")[1].isdigit():
                    f = int(parts[0].split("_")[1])
                    if f not in tasks:
                        exit_code = int(parts[2].split(":")[0]) if parts[2].split(":")[0].isdigit() else None
                        tasks[f] = _state(parts[1], exit_code)
                        reasons[f] = f"{parts[1]} exit {parts[2]}"
        for f in record.folds:
            if f not in tasks:
                tasks[f] = "cancelled" if cancelled else "failed"
                reasons[f] = (
                    "cancelled"
                    if cancelled
                    else ("not in the queue and left no exit file" + ("" if sacct_ok else " (sacct unavailable)"))
                )
        if cancelled:
            tasks = {f: ("cancelled" if s in ("pending", "running", "failed") else s) for f, s in tasks.items()}
        # several nodes: srun names the node of each task that failed; the first is where it started
        first_error: dict[int, str] = {}
        for line in sec.get("srun", []):
            m = re.match(rf"slurm-{sid}_(\d+)\.out srun: error: (\S+): (.*)$", line)
            if m and int(m[1]) not in first_error:
                first_error[int(m[1])] = f"{m[2]} ({m[3]})"
        for f, where in first_error.items():
            if tasks.get(f) == "failed":
                reasons[f] += f", first failed on node {where}"
        detail = f"slurm job {sid}: " + ", ".join(f"fold {f} {reasons[f]}" for f in sorted(tasks))
        return JobStatus(_overall(tasks), detail, "\n".join(sec.get("log", [])), tasks)

    def cancel(self, record: JobRecord) -> None:
        _, shell, jd = self._for(record)
        shell.run(f"touch {jd}/cancelled; scancel {record.handle['slurm_job_id']}", what="scancel")
