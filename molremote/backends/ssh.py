"""SSH backend: run a job on a machine you can ssh into (system OpenSSH + rsync).

launch: bundle + rendered launcher copied to `<remote_root>/jobs/<job_id>/`, then `launch.sh start`
unpacks the code and starts the job detached (setsid nohup, pid file, exit_code file), so it survives the
connection dropping. Folds run one after the other. The venv is keyed by the dependency set (a second
launch installs nothing); `venv=` uses an existing one. status/logs/cancel go through the launcher's
own modes; fetch rsyncs the job's run folders back.
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Iterator

from ..errors import EXIT_INCOMPLETE, BackendError
from ..jobs import JobRecord
from . import _remote
from .base import Backend, Job, JobStatus, follow_text, render_template
from .shell import Shell


class SshOptions(_remote.RemoteOptions):
    kill_wait_s: int = 30  # cancel: time for the trainer to checkpoint after SIGTERM before SIGKILL


class SshBackend(Backend):
    name = "ssh"
    Options = SshOptions

    def __init__(self, **options):
        super().__init__(**options)
        if not self.options.host:
            raise BackendError("ssh backend needs a host (--ssh HOST: user@host or an alias from ~/.ssh/config)")

    def _shell(self, o: SshOptions) -> Shell:
        return Shell(host=o.host, ssh_config=o.ssh_config)

    def render(self, job: Job) -> dict[str, str]:
        o = self.job_options(job)
        common, files = _remote.render_common(job, o, self.name)
        launch = render_template("ssh_launch.sh", job_id=job.job_id, experiment=job.name,
                                 folds=" ".join(str(f) for f in job.folds), common=common,
                                 train_cmd=_remote.train_cmd(job, o), kill_wait_s=o.kill_wait_s,
                                 tail_lines=o.tail_lines)
        return {"launch.sh": launch, **files}

    def launch(self, job: Job) -> JobRecord:
        from .. import jobs

        o = self.job_options(job)
        shell = self._shell(o)
        jd = _remote.ship(shell, job, o, self.render(job))
        cp = shell.run(f"bash {shlex.quote(shell.path(jd))}/launch.sh start", what="starting the job")
        pid = cp.stdout.strip().rsplit(" ", 1)[-1]
        rec = job.new_record(self.name, {"host": o.host, "job_dir": jd, "pid": pid},
                             _remote.options_for_record(o))
        rec.state, rec.detail = "running", f"pid {pid} on {o.host}"
        jobs.save(rec)
        return rec

    # ----------------------------------------------------------------------------------------- follow
    def _for(self, record: JobRecord) -> tuple[Shell, str]:
        o = self._parse(record.options)
        return self._shell(o), shlex.quote(Shell(o.host).path(record.handle["job_dir"]))

    def status(self, record: JobRecord) -> JobStatus:
        shell, jd = self._for(record)
        cp = shell.run(f"if [ -f {jd}/launch.sh ]; then bash {jd}/launch.sh status; else echo 'state missing'; fi",
                       what="reading job status")
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
            return JobStatus("failed", "the job process died without an exit code (killed or host rebooted)",
                             log_tail)
        code = int(state_line[2])
        if code == 0:
            return JobStatus("complete", "exit 0", log_tail)
        if code == EXIT_INCOMPLETE:
            return JobStatus("incomplete", "stopped early (exit 75): resumable, launch again to continue", log_tail)
        return JobStatus("failed", f"exit {code}", log_tail)

    def logs(self, record: JobRecord, follow: bool = False) -> Iterator[str]:
        shell, jd = self._for(record)

        def read_from(offset: int) -> bytes:
            cp = shell.run(f"tail -c +{offset + 1} {jd}/log.txt 2>/dev/null || true", what="reading the log")
            return cp.stdout.encode()

        return follow_text(read_from, lambda: self.status(record).state not in ("pending", "running"), follow)

    def fetch(self, record: JobRecord, dest: Path) -> Path:
        shell, _ = self._for(record)
        jd = record.handle["job_dir"]
        has = shell.run(f"test -d {shlex.quote(shell.path(jd))}/runs && echo yes || true", what="checking runs")
        if has.stdout.strip() != "yes":
            raise BackendError(f"job {record.job_id} has no run folders yet on {record.handle.get('host')}")
        shell.get(f"{jd}/runs", Path(dest), what=f"fetching runs of {record.job_id}")
        return Path(dest)

    def cancel(self, record: JobRecord) -> None:
        shell, jd = self._for(record)
        o = self._parse(record.options)
        shell.run(f"bash {jd}/launch.sh cancel", what="cancelling the job", timeout=o.kill_wait_s + 60)
