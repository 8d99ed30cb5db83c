"""SSH backend: run a job on a machine you can ssh into (system OpenSSH + rsync).

launch: bundle + rendered launcher copied to `<remote_root>/jobs/<job_id>/`, then `launch.sh start`
unpacks the code and starts the job detached (setsid nohup, pid file, exit_code file), so it survives the
connection dropping. Folds run one after the other. The venv is keyed by the dependency set (a second
launch installs nothing); `venv=` uses an existing one. status/logs/cancel go through the launcher's
own modes; fetch rsyncs the job's run folders back.
"""

from __future__ import annotations

from ..errors import EXIT_INCOMPLETE, BackendError
from ..jobs import JobRecord
from . import _remote
from .base import Job, JobStatus, render_template


class SshOptions(_remote.RemoteOptions):
    kill_wait_s: int = 30  # cancel: time for the trainer to checkpoint after SIGTERM before SIGKILL


class SshBackend(_remote.RemoteBackend[SshOptions]):
    name = "ssh"
    Options = SshOptions
    per_fold_logs = False  # one log.txt: the folds run one after the other

    def __init__(self, **options):
        super().__init__(**options)
        if not self.options.host:
            raise BackendError("ssh backend needs a host (--ssh HOST: user@host or an alias from ~/.ssh/config)")

    # ------------------------------------------------------------------------------------------- hooks
    def render(self, job: Job) -> dict[str, str]:
        o = self.job_options(job)
        common, files = _remote.render_common(job, o, self.name)
        launch = render_template(
            "ssh_launch.sh",
            job_id=job.job_id,
            experiment=job.name,
            folds=" ".join(str(f) for f in job.folds),
            common=common,
            train_cmd=_remote.train_cmd(job, o),
            kill_wait_s=o.kill_wait_s,
            tail_lines=o.tail_lines,
        )
        return {"launch.sh": launch, **files}

    def submit_command(self, job_dir: str) -> str:
        return f"bash {job_dir}/launch.sh start"

    def parse_submission(self, stdout: str, o: SshOptions) -> tuple[dict, str, str]:
        pid = stdout.strip().rsplit(" ", 1)[-1]
        if not pid.isdigit():
            raise BackendError(f"launch.sh start answered '{stdout.strip()}', expected a process id")
        return {"pid": pid}, "running", f"pid {pid} on {o.host}"

    def log_command(self, record: JobRecord, job_dir: str, fold: int, offset: int) -> str:
        return f"tail -c +{offset + 1} {job_dir}/log.txt"

    def status(self, record: JobRecord) -> JobStatus:
        _, shell, jd = self._for(record)
        cp = shell.run(
            f"if [ -f {jd}/launch.sh ]; then bash {jd}/launch.sh status; else echo 'state missing'; fi",
            what="reading job status",
        )
        head, _, log_tail = cp.stdout.partition("---\n")
        lines = head.split("\n")
        state_line, cancelled = lines[0].split(), "cancelled" in lines[1:]
        host = record.handle.get("host")
        if state_line[1:] == ["missing"]:
            return JobStatus("failed", f"job folder {record.handle['job_dir']} not found on {host}")
        if cancelled:
            return JobStatus("cancelled", "cancelled", log_tail)
        if state_line[1] == "running":
            return JobStatus("running", f"pid {record.handle.get('pid')} on {host}", log_tail)
        if state_line[1] == "pending":
            return JobStatus("pending", "starting", log_tail)
        if state_line[1] == "dead":
            return JobStatus("failed", "the job process died without an exit code (killed or host rebooted)", log_tail)
        code = int(state_line[2])
        if code == 0:
            return JobStatus("complete", "exit 0", log_tail)
        if code == EXIT_INCOMPLETE:
            return JobStatus("incomplete", "stopped early (exit 75): resumable, launch again to continue", log_tail)
        return JobStatus("failed", f"exit {code}", log_tail)

    def cancel(self, record: JobRecord) -> None:
        o, shell, jd = self._for(record)
        shell.run(f"bash {jd}/launch.sh cancel", what="cancelling the job", timeout=o.kill_wait_s + 60)
