"""Find a test's own processes by pid (Linux /proc), so a test ends exactly what it started and nothing else
on a machine that other tests and people share (never `pkill -f <pattern>`)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

ESTABLISHED = "01"


def tcp_connections() -> dict[int, tuple[int, int]]:
    """{socket inode: (local port, remote port)} of every established TCP connection (IPv4 and IPv6)."""
    out: dict[int, tuple[int, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == ESTABLISHED:
                out[int(f[9])] = (int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16))
    return out


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in os.scandir(f"/proc/{pid}/fd"):
            target = os.readlink(fd.path)
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:  # gone, or not ours to read
        pass
    return inodes


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def is_sshd_session(pid: int, listener: int) -> bool:
    """A per-connection sshd process ("sshd: root@notty", "sshd-session: ..."), not the listening daemon."""
    return pid != listener and command(pid).startswith(("sshd:", "sshd-session"))


def sshd_sessions_serving(client_pids: list[int], port: int, listener: int, marker: str | None = None) -> set[int]:
    """Server-side sshd session processes of the connections `client_pids` hold to `port`, plus the sshd
    sessions that are ancestors of processes whose command line mentions `marker` (a remote job's folder)."""
    conns = tcp_connections()
    client_ports = {
        conns[i][0] for pid in client_pids for i in socket_inodes(pid) if i in conns and conns[i][1] == port
    }
    server_inodes = {i for i, (lport, rport) in conns.items() if lport == port and rport in client_ports}
    found = set()
    for pid in all_pids():
        if is_sshd_session(pid, listener) and socket_inodes(pid) & server_inodes:
            found.add(pid)
        elif marker and marker in command(pid):
            p = parent(pid)
            while p and p > 1:
                if is_sshd_session(p, listener):
                    found.add(p)
                p = parent(p)
    return found


def pids_where(match) -> list[int]:
    """Pids of the processes whose argument list (argv) `match` accepts."""
    found = []
    for p in Path("/proc").iterdir():
        try:
            argv = (p / "cmdline").read_bytes().decode().split("\0")
        except (OSError, ValueError):
            continue
        if match(argv):
            found.append(int(p.name))
    return found


def pids_with_arg(arg: str) -> list[int]:
    """Pids of the processes with `arg` among their command-line arguments."""
    return pids_where(lambda argv: arg in argv)


def _sigmask(pid: int, *fields: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    got = 0
    for m in re.findall(rf"^(?:{'|'.join(fields)}):\s*([0-9a-f]+)$", status, re.M):
        got |= int(m, 16)
    return got


def usr1_pending(pid: int) -> bool:
    """SIGUSR1 is pending in the process (a stopped process keeps it until it continues)."""
    return bool(_sigmask(pid, "SigPnd", "ShdPnd") & (1 << (signal.SIGUSR1 - 1)))


def caught(pid: int, sig: int) -> bool:
    """The process has a handler for `sig`."""
    return bool(_sigmask(pid, "SigCgt") & (1 << (sig - 1)))


def wait_for(what: str, check, timeout: float, log=lambda: "", every: float = 0.2):
    """Poll `check` every `every` s until it returns something true (returned), failing after `timeout` s with
    `log()`'s tail."""
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, f"no {what} after {timeout} s\n{log()[-3000:]}"
        time.sleep(every)
    return got
