"""The one narrow door of the ssh and slurm backends to the outside: run a shell script here or on a host
through the system OpenSSH client, and copy files with rsync.

System `ssh` (not paramiko/asyncssh) because users' `~/.ssh/config` (aliases, ProxyJump, ControlMaster,
agent, hardware keys) then simply works, and host-key checking stays exactly as the user configured it
(BatchMode: never prompt; an unknown host key fails with ssh's own message).
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import BackendError


@dataclass(frozen=True)
class Shell:
    host: str | None = None  # None: this machine; else an ssh destination ([user@]host or ~/.ssh/config alias)
    ssh_config: str | None = None  # -F file; None: the user's ~/.ssh/config
    connect_timeout_s: int = 15

    @property
    def where(self) -> str:
        return self.host or "this machine"

    def ssh_args(self) -> list[str]:
        args = ["ssh"]
        if self.ssh_config:
            args += ["-F", str(self.ssh_config)]
        return args + ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout_s}"]

    def path(self, p: str) -> str:
        """A path as the host sees it: '~/x' and relative paths are relative to the login home directory."""
        if p.startswith("~/"):
            p = p[2:]
        if self.host is None and not p.startswith("/"):
            return str(Path.home() / p)
        return p

    def argv(self, script: str) -> list[str]:
        if self.host is None:
            return ["bash", "-c", script]
        return [*self.ssh_args(), self.host, "bash -c " + shlex.quote(script)]

    def run(
        self, script: str, *, check: bool = True, timeout: float | None = 120, what: str = "command"
    ) -> subprocess.CompletedProcess:
        cwd = str(Path.home()) if self.host is None else None
        try:
            cp = subprocess.run(
                self.argv(script),
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise BackendError(f"{what} on {self.where} did not answer within {timeout:.0f} s") from None
        if self.host and cp.returncode == 255:
            raise BackendError(f"cannot reach {self.host} over ssh: {cp.stderr.strip()[-500:]}")
        if check and cp.returncode != 0:
            raise BackendError(
                f"{what} failed on {self.where} (exit {cp.returncode}): {(cp.stderr or cp.stdout).strip()[-1500:]}"
            )
        return cp

    def _rsync(self, src: list[str], dst: str, what: str) -> None:
        argv = ["rsync", "-a"]
        if self.host:
            argv += ["-e", shlex.join(self.ssh_args())]
        cp = subprocess.run([*argv, *src, dst], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if cp.returncode != 0:
            raise BackendError(f"{what} failed (rsync exit {cp.returncode}): {cp.stderr.strip()[-1000:]}")

    def put(self, files: list[Path], remote_dir: str, what: str = "copying files") -> None:
        """Copy local files into `remote_dir` (created if needed)."""
        d = self.path(remote_dir).rstrip("/") + "/"
        self.run(f"mkdir -p {shlex.quote(d)}", what=f"creating {d}")
        self._rsync([str(f) for f in files], f"{self.host}:{d}" if self.host else d, what)

    def get(self, remote_dir: str, local_dir: Path, what: str = "fetching files") -> None:
        """Copy the contents of `remote_dir` into `local_dir` (merged; existing local files updated)."""
        src = self.path(remote_dir).rstrip("/") + "/"
        local_dir.mkdir(parents=True, exist_ok=True)
        self._rsync([f"{self.host}:{src}" if self.host else src], str(local_dir) + "/", what)
