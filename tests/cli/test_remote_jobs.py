"""`remote --ssh` / `remote --slurm` (real launches, not --dry-run) and `status`, `logs -f`, `cancel`, `fetch`,
`pull` of those jobs, all through `python -m molremote`, against the loopback sshd and SLURM cluster
(tests/backends/conftest.py `cluster`). The experiment is tests/cli/test_exit_codes.py TINY on the demo data."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from molremote.jobs import JobRecord
from molremote.runs import write_json
from tests.backends.conftest import cluster  # noqa: F401 (fixture)
from tests.cli.test_exit_codes import molremote, no_traceback, tiny_project

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
VENV = str(ROOT / ".venv")


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    no_traceback(r)
    return r.stdout


def row(table: str, job_id: str) -> list[str]:
    """The cells of the status table's row for job_id."""
    for line in table.splitlines():
        if job_id in line:
            return [c.strip() for c in line.strip("│ ").split("│")]
    raise AssertionError(f"{job_id} not in\n{table}")


def wait_log(p: Path, job_id: str, text: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while True:
        log = molremote(p, "logs", "--job", job_id).stdout
        if text in log:
            return log
        assert time.monotonic() < deadline, f"{text!r} not in the log of {job_id} after {timeout} s:\n{log}"
        time.sleep(1)


def local_manifest(p: Path, config_hash: str) -> dict:
    return json.loads((p / "runs" / "0003_belka_tiny" / f"fold0-{config_hash}" / "manifest.json").read_text())


@pytest.mark.slow  # two remote trainings (torch imports on the "host"): 30-90 s on a busy 2-core machine
def test_ssh_job_launch_follow_pull_then_cancel_and_fetch(cluster, tmp_path):  # noqa: F811
    p = tiny_project(tmp_path / "p", git=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=p, capture_output=True, text=True).stdout.strip()
    where = [
        "--ssh",
        cluster["INFRA_SSH_HOST"],
        "--ssh-config",
        cluster["INFRA_SSH_CONFIG"],
        "--venv",
        VENV,
        "--remote-root",
        str(tmp_path / "remote"),
    ]
    assert "no jobs in" in ok(molremote(p, "status"))

    out = ok(molremote(p, "remote", "-e", "3", *where))
    job = re.search(r"launched ssh job (\S+): pid (\d+) on loopback", out)
    assert job, out
    job_id = job[1]
    assert "molremote logs -e 3 -f" in out and "molremote pull -e 3" in out

    log = ok(molremote(p, "logs", "-e", "3", "-f", timeout=300))  # returns when the job ends
    lines = log.strip().splitlines()
    assert "fold 0: start" in log and "using venv " + VENV in log
    h = re.search(r"0003_belka_tiny fold 0  hash ([0-9a-f]{12})", log)[1]
    assert re.search(r"^epoch 1/1  valid belka_ap 0\.\d+  \(best\)", log, flags=re.MULTILINE), log
    assert lines[-1].endswith("fold 0: exit 0") and lines[-2].endswith(f"runs/0003_belka_tiny/fold0-{h}"), log

    cells = row(ok(molremote(p, "status", "-e", "3")), job_id)
    assert cells[1:5] == ["ssh", "0003_belka_tiny", "0", "complete"] and cells[5] == "exit 0", cells

    out = ok(molremote(p, "pull", "-e", "3"))  # no store: from where the job ran
    assert f"fetched ssh job {job_id}: 0003_belka_tiny/fold0-" in out and ": run " in out
    m = local_manifest(p, h)
    assert (m["status"], m["fold"], m["config_hash"], m["steps"]) == ("complete", 0, h, 2)
    assert m["code"]["commit"] == head and m["machine"]["backend"] == "ssh"
    run = p / "runs" / "0003_belka_tiny" / f"fold0-{h}"
    assert (run / "predictions" / "valid.parquet").stat().st_size > 0 and (run / "checkpoints" / "best.pt").is_file()

    # a long job (300 epochs), cancelled once it trains: the trainer checkpoints, the run can resume
    out = ok(molremote(p, "remote", "-e", "3", *where, "--set", "training.epochs=300"))
    long_id, pid = re.search(r"launched ssh job (\S+): pid (\d+)", out).groups()
    cells = row(ok(molremote(p, "status")), long_id)
    assert cells[4] == "running" and cells[5] == f"pid {pid} on loopback", cells
    wait_log(p, long_id, "epoch 1/300")
    assert ok(molremote(p, "cancel", "-e", "3")).strip() == f"cancelled {long_id}"
    cells = row(ok(molremote(p, "status", "-e", "3")), long_id)
    assert cells[4:6] == ["cancelled", "cancelled by `molremote cancel`"], cells
    gone = time.monotonic() + 60  # the trainer checkpoints on SIGTERM, then exits: give it that time under load
    while subprocess.run(["kill", "-0", pid], capture_output=True).returncode == 0 and time.monotonic() < gone:
        time.sleep(0.2)
    assert subprocess.run(["kill", "-0", pid], capture_output=True).returncode != 0  # the job's process is gone
    log = ok(molremote(p, "logs", "--job", long_id))
    assert "stopped (SIGTERM)" in log and "checkpoint saved" in log and log.strip().endswith("fold 0: exit 75"), log
    h2 = re.search(r"hash ([0-9a-f]{12})", log)[1]
    assert h2 != h
    r = molremote(p, "cancel", "--job", long_id)
    assert r.returncode == 0 and f"job {long_id} already ended (cancelled); nothing to cancel" in r.stderr

    assert ok(molremote(p, "fetch", "-e", "3")).strip().startswith(f"fetched {long_id}: 0003_belka_tiny/fold0-")
    m2 = local_manifest(p, h2)
    assert (m2["status"], m2["stop_reason"]) == ("incomplete", "SIGTERM"), m2
    assert local_manifest(p, h)["status"] == "complete"  # the first run is still there


SLURM_WHERE = [
    "--slurm",
    "--venv",
    VENV,
    "--time",
    "00:05:00",
    # the loopback nodes are small: 1 CPU and 500 MB per task are what the tiny model needs
    "--set",
    "backend.slurm.mem=500M",
    "--set",
    "backend.slurm.cpus=1",
]


@pytest.mark.slow  # one SLURM training: 20-60 s on a busy 2-core machine
def test_slurm_job_launch_follow_status_fetch(cluster, tmp_path):  # noqa: F811
    p = tiny_project(tmp_path / "p", git=True)
    out = ok(molremote(p, "remote", "-e", "3", *SLURM_WHERE, "--remote-root", str(tmp_path / "remote")))
    job_id, slurm_id = re.search(r"launched slurm job (\S+): slurm job (\d+)", out).groups()

    log = ok(molremote(p, "logs", "-e", "3", "-f", timeout=300))
    assert f"slurm job {slurm_id} (array {slurm_id} task 0)" in log, log
    h = re.search(r"0003_belka_tiny fold 0  hash ([0-9a-f]{12})", log)[1]
    assert re.search(r"^epoch 1/1  valid belka_ap 0\.\d+  \(best\)", log, flags=re.MULTILINE), log
    assert log.strip().splitlines()[-1].endswith("fold 0: trainer exit 0 (signalled: 0)"), log
    cells = row(ok(molremote(p, "status")), job_id)
    assert cells[1:5] == ["slurm", "0003_belka_tiny", "0", "complete"], cells
    assert cells[5] == f"slurm job {slurm_id}: fold 0 exit 0", cells

    assert ok(molremote(p, "fetch", "-e", "3")).strip().startswith(f"fetched {job_id}: 0003_belka_tiny/fold0-")
    m = local_manifest(p, h)
    assert (m["status"], m["fold"], m["machine"]["backend"]) == ("complete", 0, "slurm"), m


def slurm_job_gone(slurm_id: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while subprocess.run(["squeue", "-h", "-j", slurm_id], capture_output=True, text=True).stdout.strip():
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


@pytest.mark.slow  # one SLURM training, cancelled: 20-60 s
def test_slurm_cancel_stops_the_job(cluster, tmp_path):  # noqa: F811
    p = tiny_project(tmp_path / "p", git=True)
    out = ok(
        molremote(
            p,
            "remote",
            "-e",
            "3",
            *SLURM_WHERE,
            "--remote-root",
            str(tmp_path / "remote"),
            "--set",
            "training.epochs=300",
        )
    )
    job_id, slurm_id = re.search(r"launched slurm job (\S+): slurm job (\d+)", out).groups()
    try:
        wait_log(p, job_id, "epoch 1/300")
        assert ok(molremote(p, "cancel", "-e", "3")).strip() == f"cancelled {job_id}"
        assert row(ok(molremote(p, "status", "-e", "3")), job_id)[4] == "cancelled"
        assert slurm_job_gone(slurm_id, timeout=30), "the cancelled SLURM job is still queued or running"
        log = ok(molremote(p, "logs", "--job", job_id))
        assert "stopped (SIGTERM)" in log and "requeueing" not in log, log
    finally:
        kill_slurm_job(slurm_id)


def kill_slurm_job(slurm_id: str) -> None:
    """End this test's own job, by id, whatever it does: SIGKILL its batch shell (which then cannot requeue it),
    then cancel what is left (a requeued task waiting to start gets no signal, only removed)."""
    for _ in range(20):
        if slurm_job_gone(slurm_id, timeout=0):
            return
        subprocess.run(["scancel", "--full", "-s", "KILL", slurm_id], capture_output=True)
        time.sleep(1)
        subprocess.run(["scancel", slurm_id], capture_output=True)
        time.sleep(2)
    raise AssertionError(f"SLURM job {slurm_id} survives scancel")


def fake_ssh_job(p: Path, cluster: dict, job_dir: Path, job_id: str) -> None:  # noqa: F811
    """A finished ssh job record as `remote --ssh` leaves it, its job folder on the (loopback) host."""
    rec = JobRecord(
        job_id=job_id,
        backend="ssh",
        experiment="0003_belka_tiny",
        experiment_id=3,
        config_hash="0123456789ab",
        folds=[0],
        state="complete",
        detail="exit 0",
        handle={"host": cluster["INFRA_SSH_HOST"], "job_dir": str(job_dir), "pid": "1"},
        options={
            "host": cluster["INFRA_SSH_HOST"],
            "ssh_config": cluster["INFRA_SSH_CONFIG"],
            "remote_root": str(job_dir.parent.parent),
            "venv": VENV,
        },
    )
    write_json(p / ".molremote" / "jobs" / f"{job_id}.json", rec.to_json())


def test_fetch_never_mixes_another_run_into_a_local_run(cluster, tmp_path):  # noqa: F811
    p = tiny_project(tmp_path / "p", git=True)
    key = Path("0003_belka_tiny") / "fold0-0123456789ab"
    mine = p / "runs" / key
    (mine / "checkpoints").mkdir(parents=True)
    (mine / "checkpoints" / "best.pt").write_bytes(b"local weights")
    write_json(mine / "manifest.json", {"run_uid": "local-run", "status": "complete"})
    job_dir = tmp_path / "remote" / "jobs" / "j-other"
    theirs = job_dir / "runs" / key
    theirs.mkdir(parents=True)
    write_json(theirs / "manifest.json", {"run_uid": "other-run", "status": "incomplete"})
    fake_ssh_job(p, cluster, job_dir, "j-other")

    r = molremote(p, "fetch", "--job", "j-other")
    no_traceback(r)
    survivors = [json.loads(f.read_text())["run_uid"] for f in (p / "runs").rglob("manifest.json")]
    assert "local-run" in survivors, (r.returncode, r.stdout, r.stderr)
    # and never a chimera: the local checkpoint sits next to the local manifest only
    assert (
        json.loads((mine / "manifest.json").read_text())["run_uid"] == "local-run"
        or not (mine / "checkpoints" / "best.pt").exists()
    )
