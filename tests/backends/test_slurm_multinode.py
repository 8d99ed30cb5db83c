"""`molremote remote --slurm --nodes 2` for real: DDP over two SLURM nodes of the loopback cluster.

scripts/loopback-cluster.sh runs node1 on this host (10.77.0.1) and node2 as a second slurmd inside a network
namespace (10.77.0.2); both share the filesystem and munge. Each test submits demo experiment 1 through the
CLI with `--nodes 2 --gpus 1` (one gloo process per node, world size 2; srun starts and ranks them).
GLOO_SOCKET_IFNAME names the veth interface (the same name on both nodes): the host name resolves to 127.0.0.1
on both, which gloo would pick.
Where the namespace cannot be made, these tests skip with the cluster script's reason (never a pass).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from molremote import jobs
from molremote.backends import backend_for
from tests.helpers.procs import caught, parent, pids_where, usr1_pending, wait_for

from .conftest import CLUSTER_SCRIPT, ROOT, wait_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NETNS = "molremote-node2"
# a few steps of the demo experiment (of ~26 per epoch; each epoch validates on ~3.3k molecules)
SHORT = ["--set", "training.epochs=1", "--set", "training.max_steps_per_epoch=3"]
# two epochs: training lasts long enough to be caught mid-way, and a resubmission can resume from the first
# epoch's checkpoint
TWO_EPOCHS = ["--set", "training.epochs=2", "--set", "training.max_steps_per_epoch=8"]
# the loopback nodes advertise 4000 MB and 8 CPUs; the experiment's 16G would never be scheduled
SMALL = ["--set", "backend.slurm.mem=2G", "--set", "backend.slurm.cpus=1"]


@pytest.fixture(scope="module")
def two_nodes(cluster):
    if cluster.get("INFRA_SLURM_NODES") != "2":
        why = subprocess.run(["bash", str(CLUSTER_SCRIPT), "nodes"], capture_output=True, text=True).stdout.strip()
        pytest.skip(f"two-node SLURM tests did not run: {why}")
    return cluster


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "molremote.toml").touch()
    return {
        **os.environ,
        "MOLREMOTE_PROJECT": str(ROOT),
        "MOLREMOTE_CONFIG": str(tmp_path / "molremote.toml"),
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "250",
        **extra,
    }


def cli(tmp_path: Path, *args: str, timeout: int = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "molremote", *args],
        env=_env(tmp_path, **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def submit(tmp_path: Path, sets: list[str], time_limit: str = "00:05:00", max_restarts: int = 2, *extra: str):
    """`molremote remote -e 1 --slurm --nodes 2 --gpus 1`; sbatch passes this environment to the job."""
    r = cli(
        tmp_path,
        "remote",
        "-e",
        "1",
        "--slurm",
        "--nodes",
        "2",
        "--gpus",
        "1",
        *sets,
        *SMALL,
        "--set",
        f"backend.slurm.max_restarts={max_restarts}",
        "--time",
        time_limit,
        "--venv",
        str(ROOT / ".venv"),
        "--remote-root",
        str(tmp_path / "remote"),
        *extra,
        GLOO_SOCKET_IFNAME="mrnode2",
    )
    assert r.returncode == 0, r.stderr
    rec = jobs.load(re.search(r"launched slurm job (\S+):", r.stdout)[1])
    return rec, backend_for(rec), Path(rec.handle["job_dir"])


def local_ddp(tmp_path: Path, sets: list[str]) -> subprocess.Popen:
    """The reference: `molremote train -e 1 --gpus 2` here (2 gloo processes, one machine)."""
    return subprocess.Popen(
        [sys.executable, "-m", "molremote", "train", "-e", "1", "--gpus", "2", *sets],
        env=_env(tmp_path, MOLREMOTE_RUNS=str(tmp_path / "local")),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_dir(job_dir: Path) -> Path:
    (m,) = (job_dir / "runs").glob("0001_*/fold0-*/manifest.json")
    return m.parent


def assert_same_weights(a: Path, b: Path) -> None:
    import torch

    wa = torch.load(a, map_location="cpu", weights_only=False)["model"]
    wb = torch.load(b, map_location="cpu", weights_only=False)["model"]
    assert wa.keys() == wb.keys()
    for k in wa:  # the tolerance of tests/training/test_ddp.py: the same model up to float rounding
        assert torch.allclose(wa[k], wb[k], atol=1e-5), k


def workers(job_dir: Path) -> dict[str, int]:
    """{node: pid} of the trainer processes srun started for this job (node2's are in its namespace)."""
    in_ns = set(subprocess.run(["ip", "netns", "pids", NETNS], capture_output=True, text=True).stdout.split())
    exp = f"{job_dir}/experiment.json"
    pids = pids_where(lambda argv: exp in argv and "torch.distributed.run" not in argv and argv[1:2] == ["-c"])
    return {("node2" if str(p) in in_ns else "node1"): p for p in pids}


def test_two_nodes_train_like_local_ddp(two_nodes, tmp_path):
    """Both nodes take part (one rank per node, world size 2) and the result equals `train --gpus 2` here."""
    local = local_ddp(tmp_path, SHORT)  # runs while the job is queued and trains: same 2 cores either way
    rec, be, jd = submit(tmp_path, SHORT)
    st = wait_state(be, rec, timeout=400, poll=2)
    log = "".join(be.logs(rec))
    assert st.state == "complete", log[-3000:]
    assert "node node1 (10.77.0.1): rank 0 of 2, store at 10.77.0.1:" in log
    assert "node node2 (10.77.0.2): rank 1 of 2, store at 10.77.0.1:" in log
    m = json.loads((run_dir(jd) / "manifest.json").read_text())
    assert m["status"] == "complete" and m["world_size"] == 2, m
    out, err = local.communicate(timeout=400)
    assert local.returncode == 0, err[-3000:]
    assert_same_weights(run_dir(jd) / "checkpoints/last.pt", Path(out.strip().splitlines()[-1]) / "checkpoints/last.pt")


def batch_shells(sid: str) -> list[int]:
    """Pids of the shells running job `sid`'s batch script (node1's slurmd spool: `.../job00012/slurm_script`)."""
    tail = f"/job{int(sid):05d}/slurm_script"
    found = pids_where(lambda argv: any(a.endswith(tail) for a in argv))
    return [p for p in found if parent(p) not in found]  # not its subshells (same command line)


def running_session(job_dir: Path) -> bool:
    """Rank 0 has read the data and opened a session (training follows once both ranks pass the barrier)."""
    for m in (job_dir / "runs").glob("0001_*/fold0-*/manifest.json"):
        try:
            return json.loads(m.read_text()).get("status") == "running"
        except ValueError:  # being replaced
            return False
    return False


def test_one_minute_limit_usr1_reaches_both_nodes_requeue_resume(two_nodes, tmp_path):
    """`--time 00:01:00`: SLURM sends USR1 30 s before the limit (the margin is halved to fit) to the batch shell,
    srun relays it to both nodes, each node's task passes it to its worker; rank 0 checkpoints, the job exits
    75, requeues, and resumes on two nodes to the same final weights as an uninterrupted `train --gpus 2`.

    SLURM checks limits every 30 s and sends the warning up to one check early, so USR1 comes 0-30 s after the
    start, often before the trainers exist (the stop file keeps it: they stop at their first step), and the
    kill 60-90 s after the start. Where the trainers are already training (a fast machine could finish the
    run first), they are stopped (SIGSTOP) and continued when USR1 is pending in both: it lands mid-training.
    The requeued attempt gets a USR1 of its own, sent to its batch shell (as `--signal=B:USR1` does) the moment
    the shell traps it, before the trainers listen: it is kept the same way (stop at the first step, exit 75,
    requeue), and the third attempt, given 5 minutes, completes."""
    local = local_ddp(tmp_path, TWO_EPOCHS)
    rec, be, jd = submit(tmp_path, TWO_EPOCHS, "00:01:00", 3)
    sid = rec.handle["slurm_job_id"]
    logs = lambda: "".join(be.logs(rec))  # noqa: E731
    usr1_came = lambda: "USR1: time limit near" in logs()  # noqa: E731

    def training_or_usr1():
        if usr1_came():
            return "usr1"
        w = workers(jd)
        ok = len(w) == 2 and running_session(jd) and all(caught(p, signal.SIGUSR1) for p in w.values())
        return w if ok else None

    got = wait_for("training on both nodes or USR1", training_or_usr1, 150, logs)
    if got != "usr1":  # hold both workers mid-training until SLURM's USR1 is pending in each
        for pid in got.values():
            os.kill(pid, signal.SIGSTOP)
        try:
            wait_for("USR1 from SLURM", usr1_came, 120, logs)
            wait_for("USR1 pending in both workers", lambda: all(usr1_pending(p) for p in got.values()), 20, logs)
        finally:
            for pid in got.values():
                os.kill(pid, signal.SIGCONT)
    print("SLURM's USR1 came", "mid-training" if got != "usr1" else "before both workers were training")
    wait_for("requeue", lambda: "requeueing (restart 1/" in logs(), 120, logs)
    first_shells = set(batch_shells(sid))
    # the later attempts get room: a busy machine must not make them hit the 1-minute limit again
    subprocess.run(["scontrol", "update", f"JobId={sid}", "TimeLimit=5"], check=True)

    # second attempt: USR1 to its batch shell the moment the shell has set its trap (as SLURM's `--signal=B:USR1`
    # sends it), while the trainers are at most starting Python: the shell touches the stop file and relays USR1,
    # and the trainers, which did not listen yet, find the file when they install their handler and stop at their
    # first step. /proc is polled every millisecond; a trainer needs ~0.3 s or more from exec to its handler.
    new_shell = lambda: next(iter(set(batch_shells(sid)) - first_shells), 0)  # noqa: E731
    shell = wait_for("second attempt's batch shell", new_shell, 120, every=0.001)
    wait_for("its USR1 trap", lambda: caught(shell, signal.SIGUSR1), 60, every=0.001)
    os.kill(shell, signal.SIGUSR1)
    wait_for("the stop file", (jd / "state" / "fold0.stop").exists, 30, every=0.001)
    listening = {n: p for n, p in workers(jd).items() if caught(p, signal.SIGUSR1)}
    assert not listening, f"trainers listened before the USR1 ({listening}): this would not test the early path"
    wait_for("second requeue", lambda: "requeueing (restart 2/" in logs(), 200, logs)

    st = wait_state(be, rec, timeout=300, poll=2)
    log = logs()
    assert st.state == "complete", log[-3000:]
    assert log.count("trainer exit 75 (signalled: 1)") == 2 and "fold 0: trainer exit 0" in log
    assert (
        log.count("node node2 (10.77.0.2): rank 1 of 2") == 3 and log.count("node node1 (10.77.0.1): rank 0 of 2") == 3
    )
    m = json.loads((run_dir(jd) / "manifest.json").read_text())
    assert m["status"] == "complete" and m["world_size"] == 2
    assert [s.get("status") for s in m["sessions"]] == ["incomplete", "incomplete", "complete"], m["sessions"]
    # rank 0 checkpointed on each USR1 and the next attempt resumed from that very batch
    stops = re.findall(r"stopped \(SIGUSR1\) in (epoch \d+/\d+ batch \d+/\d+); checkpoint saved", log)
    resumes = re.findall(r"resuming fold0-\w+ at (epoch \d+/\d+ batch \d+/\d+) ", log)
    assert len(stops) == 2 and resumes == stops, log[-3000:]
    out, err = local.communicate(timeout=400)
    assert local.returncode == 0, err[-3000:]
    assert_same_weights(run_dir(jd) / "checkpoints/last.pt", Path(out.strip().splitlines()[-1]) / "checkpoints/last.pt")


def test_node_dying_fails_visibly_and_resume_continues_from_the_checkpoint(two_nodes, tmp_path):
    """The worker on node2 is killed after the first epoch: the job fails, `molremote status` names node2 and
    shows the log tail; `molremote remote ... --resume JOB` (a new job, no store) takes the run folder over and
    resumes from the epoch-1 checkpoint."""
    rec, be, jd = submit(tmp_path, TWO_EPOCHS)
    logs = lambda: "".join(be.logs(rec))  # noqa: E731

    def epoch_done():
        return any('"valid_' in p.read_text() for p in (jd / "runs").glob("0001_*/fold0-*/metrics.jsonl"))

    wait_for("end of epoch 1", epoch_done, 300, logs)
    node2 = wait_for("worker on node2", lambda: workers(jd).get("node2"), 30, logs)
    os.kill(node2, signal.SIGKILL)
    st = wait_state(be, rec, timeout=200, poll=2)
    assert st.state == "failed", logs()[-3000:]
    r = cli(tmp_path, "status", "-e", "1", MOLREMOTE_JOBS=os.environ["MOLREMOTE_JOBS"])
    assert r.returncode == 0, r.stderr
    # node2's rank was killed (exit 137 from its task); rank 0 fails next, its peer gone
    assert "failed" in r.stdout and "first failed on node node2 (task 1: Exited with exit code 137)" in r.stdout
    tail = r.stdout.split("log tail", 1)[-1]  # under the table: the log's last lines (node1 failed next)
    assert "srun: error: node1: task 0: Exited with exit code 1" in tail  # srun exits with the highest code
    assert "node node1 rank 0: trainer exit 1" in tail and "fold 0: trainer exit 137 " in tail
    assert f"--resume {rec.job_id}`" in tail
    old_run = run_dir(jd)

    rec2, be2, jd2 = submit(tmp_path, TWO_EPOCHS, "00:05:00", 2, "--resume", rec.job_id)
    assert jd2 != jd
    st = wait_state(be2, rec2, timeout=300, poll=2)
    log2 = "".join(be2.logs(rec2))
    assert st.state == "complete", log2[-3000:]
    assert f"fold 0: resuming the run of job {rec.job_id} (run folder moved from" in log2
    assert not old_run.exists()  # moved, not copied: one run folder
    rd = run_dir(jd2)
    m = json.loads((rd / "manifest.json").read_text())
    assert m["status"] == "complete" and m["world_size"] == 2
    assert [s.get("status") for s in m["sessions"]] == ["failed", "complete"], m["sessions"]
    rows = [json.loads(x) for x in (rd / "metrics.jsonl").read_text().splitlines()]
    # resumed after epoch 1 (index 0): its validation is not repeated
    assert [r["epoch"] for r in rows if "valid_belka_ap" in r] == [0, 1], rows
