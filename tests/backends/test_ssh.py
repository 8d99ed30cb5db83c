"""molremote/backends/ssh.py: rendered launcher (golden) and real runs over the loopback sshd."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from molremote import jobs
from molremote.backends import backend_for, get_backend
from molremote.backends.base import Job
from molremote.errors import BackendError

from .conftest import EXPERIMENT, ROOT, check_golden, fixed_bundle, make_job, wait_state

HELLO = '"$PY" -m pkg.hello "$FOLD"'


def test_render_golden():
    be = get_backend("ssh", host="gpu-box", remote_root="/scratch/me/molremote")
    job = Job(
        job_id="0620_fatgcn-ssh-20261101T120000-abcd",
        experiment=EXPERIMENT,
        folds=[0, 1],
        bundle=fixed_bundle(),
        train_args=["--max-time", "11h30m"],
    )
    files = be.render(job)
    assert sorted(files) == ["experiment.json", "launch.sh", "requirements.txt"]
    assert files["requirements.txt"] == "numpy>=1.26\ntorch>=2.6\n"
    check_golden("ssh_launch.sh", files["launch.sh"])
    assert be.render(job) == files  # pure
    with pytest.raises(BackendError, match="ssh backend option 'kill_wait_s'"):
        get_backend("ssh", host="h", kill_wait_s="soon")
    with pytest.raises(BackendError, match="needs a host"):
        get_backend("ssh")


@pytest.fixture
def ssh(cluster, tmp_path):
    def make(**kw):
        return get_backend(
            "ssh",
            host=cluster["INFRA_SSH_HOST"],
            ssh_config=cluster["INFRA_SSH_CONFIG"],
            remote_root=str(tmp_path / "remote"),
            **kw,
        )

    return make


@pytest.mark.integration
def test_two_folds_run_detached_and_come_back(ssh, small_project, tmp_path):
    be = ssh(venv=str(ROOT / ".venv"), train_cmd=HELLO + ' && mkdir -p runs/x && echo "$FOLD" > runs/x/f$FOLD')
    rec = be.launch(make_job(small_project, tmp_path / "b", "j-two", folds=[0, 3]))
    assert rec.state == "running" and rec.handle["pid"].isdigit()
    assert jobs.load("j-two").handle == rec.handle  # saved for `molremote status`
    st = wait_state(be, rec)
    assert st.state == "complete", st
    log = "".join(be.logs(rec))
    assert "hello from the bundle, fold 0" in log and "hello from the bundle, fold 3" in log
    dest = be.fetch(rec, tmp_path / "runs")
    assert (dest / "x" / "f3").read_text() == "3\n"
    # a rebuilt backend (as `molremote status` does from the record) sees the same
    assert backend_for(jobs.load("j-two")).status(rec).state == "complete"


@pytest.mark.integration
def test_failures_show_failed_with_log_tail(ssh, small_project, tmp_path):
    be = ssh(venv=str(ROOT / ".venv"), train_cmd='"$PY" -c "import no_such_module_xyz"')
    rec = be.launch(make_job(small_project, tmp_path / "b", "j-import"))
    st = wait_state(be, rec)
    assert st.state == "failed" and st.detail == "exit 1"
    assert "ModuleNotFoundError: No module named 'no_such_module_xyz'" in st.log_tail

    be = ssh(venv="/nonexistent/venv")  # bad environment: fails before training
    rec = be.launch(make_job(small_project, tmp_path / "b", "j-novenv"))
    st = wait_state(be, rec)
    assert st.state == "failed" and "venv /nonexistent/venv has no bin/python" in st.log_tail


@pytest.mark.integration
def test_killed_job_is_failed_and_cancel_is_cancelled(ssh, small_project, tmp_path):
    be = ssh(venv=str(ROOT / ".venv"), train_cmd="sleep 300", kill_wait_s=5)
    rec = be.launch(make_job(small_project, tmp_path / "b", "j-kill"))
    assert be.status(rec).state == "running"
    os.killpg(int(rec.handle["pid"]), signal.SIGKILL)  # the whole detached session, as an OOM killer would
    st = wait_state(be, rec, timeout=20)
    assert st.state == "failed" and "died without an exit code" in st.detail

    rec = be.launch(make_job(small_project, tmp_path / "b", "j-cancel"))
    assert be.status(rec).state == "running"
    be.cancel(rec)
    assert be.status(rec).state == "cancelled"
    ps = subprocess.run(["ps", "-o", "stat=", "-p", rec.handle["pid"]], capture_output=True, text=True)
    assert ps.returncode != 0 or ps.stdout.startswith("Z")  # gone (or a zombie waiting for init)
    assert "fold 0: exit 143" in "".join(be.logs(rec))  # the trainer got SIGTERM, the launcher recorded it


@pytest.mark.integration
def test_venv_created_once_per_dependency_set(ssh, small_project, tmp_path):
    be = ssh(extras=["train"], train_cmd='"$PY" -c "import sys; print(sys.prefix)"')
    r1 = be.launch(make_job(small_project, tmp_path / "b", "j-venv1"))
    assert wait_state(be, r1).state == "complete"
    r2 = be.launch(make_job(small_project, tmp_path / "b", "j-venv2"))
    assert wait_state(be, r2).state == "complete"
    l1, l2 = "".join(be.logs(r1)), "".join(be.logs(r2))
    assert "creating venv" in l1 and "reusing venv" in l2 and "creating venv" not in l2
    venvs = list((tmp_path / "remote" / "venvs").glob("*/.ready"))
    assert len(venvs) == 1 and str(venvs[0].parent) in l2


@pytest.mark.integration
def test_unknown_host_key_is_refused(cluster, small_project, tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text(
        Path(cluster["INFRA_SSH_CONFIG"])
        .read_text()
        .replace(cluster["INFRA_SSH_KNOWN_HOSTS"], str(tmp_path / "empty_known_hosts"))
    )
    be = get_backend("ssh", host="loopback", ssh_config=str(cfg), remote_root=str(tmp_path / "remote"))
    with pytest.raises(BackendError, match="(?s)cannot reach loopback over ssh: .*Host key verification failed"):
        be.launch(make_job(small_project, tmp_path / "b", "j-hostkey"))


@pytest.mark.integration
@pytest.mark.slow
def test_demo_experiment_trains_over_ssh_and_results_come_back(ssh, tmp_path):
    from molremote.bundle import make_bundle
    from molremote.experiments import Registry

    reg = Registry(ROOT / "experiments")
    exp = reg.resolve(1 if 1 in reg.ids() else reg.ids()[0])
    be = ssh(venv=str(ROOT / ".venv"))
    job = Job(
        job_id="j-demo",
        experiment=exp.to_json(),
        folds=[0],
        bundle=make_bundle(ROOT, tmp_path / "b"),
        train_args=["--set", "training.epochs=1", "--set", "training.max_steps_per_epoch=3"],
    )
    rec = be.launch(job)
    st = wait_state(be, rec, timeout=400, poll=2)
    assert st.state == "complete", st.log_tail
    dest = be.fetch(rec, tmp_path / "runs")
    manifests = list(dest.glob(f"{exp.name}/fold0-*/manifest.json"))
    assert len(manifests) == 1
    import json

    m = json.loads(manifests[0].read_text())
    assert m["status"] == "complete" and m["fold"] == 0
    assert m["code"]["commit"] == job.bundle.commit and m["code"]["dirty"] == job.bundle.dirty
    assert m["code"]["bundle_hash"] == job.bundle.sha256  # the archive hash remote_common.sh exports
