"""How long a two-node SLURM job takes to reach a checkpointable stop: the timeline of one
`molremote remote -e 1 --slurm --nodes 2 --gpus 1` job on the loopback cluster (scripts/loopback-cluster.sh),
with a USR1 sent to its batch shell as soon as it runs (the earliest "time limit near" possible).

    .venv/bin/python benchmarks/slurm_start.py [--runs 2]

Each event is seconds after the batch shell's first log line: the srun task of each node logging its rank,
the trainer process appearing, its USR1 handler (`train` has started: training/early.py; the USR1 sent
before is found as the stop file), rank 0's session opening (torch imported, data read), the stop checkpoint
and the job's exit 75. Run as root with the cluster's two nodes up; the job folders go to a temp dir.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NETNS = "molremote-node2"


def _clock(hms: str) -> float:
    h, m, s = (int(x) for x in hms.split(":"))
    return h * 3600 + m * 60 + s


def _trainers(job_dir: Path) -> dict[str, int]:
    """{node: pid} of this job's trainer processes (node2's are in its namespace)."""
    in_ns = set(subprocess.run(["ip", "netns", "pids", NETNS], capture_output=True, text=True).stdout.split())
    found: dict[str, int] = {}
    for p in Path("/proc").iterdir():
        try:
            argv = (p / "cmdline").read_bytes().decode().split("\0")
        except (OSError, ValueError):
            continue
        if f"{job_dir}/experiment.json" not in argv:
            continue
        if argv[1:2] == ["-c"]:
            found["node2" if p.name in in_ns else "node1"] = int(p.name)
    return found


def _catches_usr1(pid: int) -> bool:
    try:
        m = re.search(r"^SigCgt:\s*([0-9a-f]+)$", Path(f"/proc/{pid}/status").read_text(), re.M)
    except OSError:
        return False
    return bool(m and int(m[1], 16) & (1 << (signal.SIGUSR1 - 1)))


def one_run(tmp: Path) -> dict[str, float]:
    (tmp / "molremote.toml").touch()
    env = {
        **os.environ,
        "MOLREMOTE_PROJECT": str(ROOT),
        "MOLREMOTE_CONFIG": str(tmp / "molremote.toml"),
        "MOLREMOTE_JOBS": str(tmp / "jobs"),
        "PYTHONPATH": str(ROOT),
        "GLOO_SOCKET_IFNAME": "mrnode2",
        "COLUMNS": "250",  # one line per message (rich wraps at 80 columns otherwise)
    }
    sets = ["training.epochs=2", "training.max_steps_per_epoch=8", "backend.slurm.mem=2G", "backend.slurm.cpus=1"]
    sets += ["backend.slurm.max_restarts=0"]
    cmd = [sys.executable, "-m", "molremote", "remote", "-e", "1", "--slurm", "--nodes", "2", "--gpus", "1"]
    cmd += [x for s in sets for x in ("--set", s)]
    cmd += ["--time", "00:05:00", "--venv", str(ROOT / ".venv"), "--remote-root", str(tmp / "remote")]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    found = re.search(r": slurm job (\d+)", out)
    assert found, f"no slurm job id in: {out}"
    sid = found[1]
    (job_dir,) = (tmp / "remote" / "jobs").iterdir()
    log_file = job_dir / f"slurm-{sid}_0.out"
    events: dict[str, float] = {}  # wall-clock seconds (time of day)
    sent = False
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        now = dt.datetime.now()
        t = now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1e6
        log = log_file.read_text() if log_file.exists() else ""
        if (m := re.search(r"^\[molremote (\S+)\] slurm job", log, re.M)) and "batch shell" not in events:
            events["batch shell"] = _clock(m[1])
        if "batch shell" in events and not sent:
            subprocess.run(["scancel", "--signal=USR1", "--batch", sid], check=True)
            events["USR1 sent"], sent = t, True
        for node in ("node1", "node2"):
            m = re.search(rf"^\[molremote (\S+)\] node {node} \(", log, re.M)
            if m and f"{node}: srun task" not in events:
                events[f"{node}: srun task"] = _clock(m[1])
        for node, pid in _trainers(job_dir).items():
            events.setdefault(f"{node}: trainer process", t)
            if _catches_usr1(pid):
                events.setdefault(f"{node}: trainer listens", t)
        for mf in (job_dir / "runs").glob("0001_*/fold0-*/manifest.json"):
            try:
                sess = json.loads(mf.read_text()).get("sessions") or []
            except ValueError:
                continue
            if sess and "rank 0: session opened" not in events:
                s = dt.datetime.fromisoformat(sess[0]["started_at"])
                events["rank 0: session opened"] = s.hour * 3600 + s.minute * 60 + s.second
        for tl in (job_dir / "runs").glob("0001_*/fold0-*/logs/train.log"):
            if m := re.search(r"^\S+T(\S+) stopped \(SIGUSR1\)", tl.read_text(), re.M):
                events.setdefault("rank 0: stop checkpoint saved", _clock(m[1]))
        if m := re.search(r"^\[molremote (\S+)\] fold 0: trainer exit (\d+)", log, re.M):
            events[f"trainer exit {m[2]}"] = _clock(m[1])
            break
        time.sleep(0.1)
    t0 = events.get("batch shell", 0.0)
    return {k: v - t0 for k, v in sorted(events.items(), key=lambda kv: kv[1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="mr-slurm-start-") as tmp:
            load = os.getloadavg()[0]
            timeline = one_run(Path(tmp))
        print(f"run {i + 1} (load average {load:.1f} at submission):")
        for k, v in timeline.items():
            print(f"  {v:6.1f} s  {k}")


if __name__ == "__main__":
    main()
