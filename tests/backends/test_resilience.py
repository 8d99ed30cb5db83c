"""What remote runs survive: an ssh connection dropped mid-run, and a SLURM time limit hit by the real
trainer (USR1 -> checkpoint -> exit 75 -> requeue -> resume) ending with the same weights as one
uninterrupted run. Real loopback sshd and SLURM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from molremote.backends import get_backend
from molremote.backends.base import Job
from molremote.bundle import make_bundle
from molremote.experiments import Registry
from tests.helpers.procs import sshd_sessions_serving, wait_for
from tests.training import toy
from tests.training.test_trainer import TOY
from tests.training.test_trainer import cli as toy_cli

from .conftest import ROOT, make_job, wait_state


@pytest.mark.integration
def test_ssh_job_survives_the_connection_dropping(cluster, small_project, tmp_path):
    be = get_backend(
        "ssh",
        host=cluster["INFRA_SSH_HOST"],
        ssh_config=cluster["INFRA_SSH_CONFIG"],
        remote_root=str(tmp_path / "remote"),
        venv=str(ROOT / ".venv"),
        train_cmd='sleep 6 && "$PY" -m pkg.hello "$FOLD"',
    )
    rec = be.launch(make_job(small_project, tmp_path / "b", "j-drop"))
    # a session watching the job, as `molremote logs -f` keeps one open
    watcher = subprocess.Popen(
        ["ssh", "-F", cluster["INFRA_SSH_CONFIG"], cluster["INFRA_SSH_HOST"], "sleep 60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    bystander = subprocess.Popen(
        ["ssh", "-F", cluster["INFRA_SSH_CONFIG"], cluster["INFRA_SSH_HOST"], "sleep 60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)
    assert be.status(rec).state == "running"
    # drop this test's ssh connections on the server side: the watcher's session and any session still
    # holding the job's processes (found by pid; other users of the shared sshd keep theirs)
    listener = int(Path(cluster["INFRA_SSH_CONFIG"]).with_name("sshd.pid").read_text())
    ours = sshd_sessions_serving(
        [watcher.pid], port=int(cluster["INFRA_SSH_PORT"]), listener=listener, marker=str(tmp_path / "remote")
    )
    assert ours, "found no sshd session serving the watcher"
    for pid in ours:
        os.kill(pid, signal.SIGTERM)
    assert watcher.wait(timeout=20) != 0  # the watcher's connection really dropped
    assert bystander.poll() is None  # someone else's session on the shared sshd is untouched
    bystander.terminate()
    bystander.wait(timeout=10)
    st = wait_state(be, rec, timeout=120, poll=1)
    assert st.state == "complete", st.log_tail
    assert "hello from the bundle, fold 0" in "".join(be.logs(rec))


@pytest.mark.integration
@pytest.mark.slow
def test_slurm_time_limit_requeues_and_resumes_to_the_uninterrupted_result(cluster, tmp_path, monkeypatch):
    # the toy task (tests/training/toy.py, shipped in the bundle) at ~1.2 s a step: 48 steps outlast a
    # 1-minute SLURM limit whose USR1 comes 40 s early, so SLURM stops the trainer at least once
    project = tmp_path / "proj"
    (project / "experiments").mkdir(parents=True)
    (project / "experiments" / "0001_toy.py").write_text(
        "from molremote.experiments import experiment\n"
        + TOY.format(epochs=4, task=', "sleep_s": 1.2', training='"batch_size": 32')
    )
    monkeypatch.setenv("MOLREMOTE_PROJECT", str(project))
    toy.register()
    exp = Registry(project / "experiments").resolve(1)

    ref = toy_cli(project, "train", "-e", "1", "--set", "task.sleep_s=0")  # uninterrupted, no sleeping
    assert ref.returncode == 0, ref.stderr
    ref_dir = Path(ref.stdout.strip().splitlines()[-1])

    train = (
        '"$PY" -m tests.training.toy train --experiment-json "$JOB_DIR/experiment.json" --fold "$FOLD" --no-progress'
    )
    be = get_backend(
        "slurm",
        remote_root=str(tmp_path / "remote"),
        venv=str(ROOT / ".venv"),
        time="00:01:00",
        mem="500M",
        cpus=1,
        signal_margin_s=40,
        max_restarts=6,
        train_cmd=train,
    )
    rec = be.launch(
        Job(job_id="s-limit", experiment=exp.to_json(), folds=[0], bundle=make_bundle(ROOT, tmp_path / "b"))
    )
    logs = lambda: "".join(be.logs(rec))  # noqa: E731
    wait_for("a requeue", lambda: "requeueing (restart 1/" in logs(), 240, logs)
    # the later attempts get room: a slow machine (each attempt spends ~15 s starting) must not use up the
    # restarts 10 steps at a time
    subprocess.run(["scontrol", "update", f"JobId={rec.handle['slurm_job_id']}", "TimeLimit=5"], check=True)
    st = wait_state(be, rec, timeout=420, poll=3)
    log = logs()
    assert st.state == "complete", log[-3000:]
    assert "USR1: time limit near" in log and "trainer exit 75 (signalled: 1)" in log
    dest = be.fetch(rec, tmp_path / "runs")
    (run_dir,) = [p.parent for p in dest.glob("0001_toy/fold0-*/manifest.json")]
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "complete" and len(m["sessions"]) >= 2
    assert any(s.get("status") == "incomplete" for s in m["sessions"])
    # sleep_s only slows the steps down: the remote run's weights equal the uninterrupted local run's
    a = torch.load(run_dir / "checkpoints/last.pt", weights_only=False)["model"]
    b = torch.load(ref_dir / "checkpoints/last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
