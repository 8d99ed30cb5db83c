"""molremote/backends/slurm.py: rendered sbatch (golden) and real jobs on the loopback SLURM cluster."""

from __future__ import annotations

import pytest

from molremote import jobs
from molremote.backends import backend_for, get_backend
from molremote.backends.base import Job
from molremote.errors import BackendError

from .conftest import EXPERIMENT, ROOT, check_golden, fixed_bundle, make_job, wait_state

# Stands in for the trainer (same contract: exit 0 complete, 75 incomplete/resumable; USR1/TERM -> checkpoint
# and exit 75). Behaviour per fold through files in the job folder, so one array exercises several paths.
FAKE_TRAINER_SH = r"""
ckpt="runs/ckpt$FOLD"; mkdir -p runs
echo "attempt restart=${SLURM_RESTART_COUNT:-0} fold=$FOLD resume_from=$(cat $ckpt 2>/dev/null || echo none)"
case "$(cat mode$FOLD 2>/dev/null)" in
  deadline_once) [ -f "$ckpt" ] && exit 0; echo step1 > "$ckpt"; exit 75 ;;
  always_75) exit 75 ;;
  fail) echo "Traceback: boom" >&2; exit 3 ;;
  wait_signal)
    [ -f "$ckpt" ] && { echo "resumed from $(cat $ckpt)"; exit 0; }
    trap 'echo "got USR1: checkpoint"; echo step7 > "$ckpt"; exit 75' USR1
    for i in $(seq 600); do sleep 0.2; done; exit 9 ;;
  *) echo "hello fold $FOLD"; exit 0 ;;
esac
"""
FAKE_TRAINER = 'bash "$CODE/pkg/fake_trainer.sh"'


def golden_job(folds, **kw):
    return Job(
        job_id="0620_fatgcn-slurm-20261101T120000-abcd", experiment=EXPERIMENT, folds=folds, bundle=fixed_bundle(), **kw
    )


def test_render_golden():
    be = get_backend(
        "slurm",
        host="login.cluster",
        remote_root="~/.molremote",
        partition="gpu",
        account="proj42",
        time="11:30:00",
        mem="64G",
        cpus=8,
        signal_margin_s=600,
        max_restarts=3,
        sbatch_extra=["--qos=long"],
    )
    files = be.render(golden_job([0, 1, 2, 3, 4], gpus=1))
    assert sorted(files) == ["experiment.json", "job.sbatch", "requirements.txt"]
    check_golden("slurm.sbatch", files["job.sbatch"])
    s = files["job.sbatch"]
    for line in (
        "#SBATCH --array=0,1,2,3,4",
        "#SBATCH --signal=B:USR1@600",
        "#SBATCH --requeue",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=proj42",
        "#SBATCH --time=11:30:00",
        "MAX_RESTARTS=3",
    ):
        assert line in s.splitlines()
    assert "\nsrun " not in s and "torch.distributed" not in s  # one GPU, one node: the trainer runs directly
    # experiment defaults when options are not given; several GPUs -> srun, one task per GPU, on one node
    s2 = get_backend("slurm").render(golden_job([2], gpus=4))["job.sbatch"]
    assert "#SBATCH --time=01:00:00" in s2 and "#SBATCH --mem=16G" in s2 and "#SBATCH --array=2" in s2
    assert "--partition" not in s2 and '--ntasks-per-node=4 --cpus-per-task="$SLURM_CPUS_PER_TASK"' in s2
    assert "#SBATCH --nodes=1\n#SBATCH --ntasks-per-node=4\n#SBATCH --cpus-per-task=1" in s2
    assert "#SBATCH --gpus-per-node=4" in s2
    with pytest.raises(BackendError, match="slurm time '90 minutes'"):
        get_backend("slurm", time="90 minutes").render(golden_job([0]))


def test_render_golden_two_nodes():
    """--nodes 2 --gpus 4: one srun task per process (4 per node), ranked by SLURM, meeting at rank 0's TCP store
    on the first node; USR1 relayed through srun; srun's exit code mapped to 75 or 0 via the manifest."""
    be = get_backend(
        "slurm", partition="gpu", time="11:30:00", mem="64G", cpus=32, nodes=2, signal_margin_s=600, max_restarts=3
    )
    s = be.render(golden_job([0], gpus=4))["job.sbatch"]
    check_golden("slurm_2nodes.sbatch", s)
    lines = s.splitlines()
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --cpus-per-task=8",  # cpus is per node: 32 for its 4 processes
        "#SBATCH --signal=B:USR1@600",
        "#SBATCH --requeue",
        'wait_child; RC=$?; RC=$(ddp_exit "$RC")',
    ):
        assert line in lines, line
    assert "#SBATCH --ntasks=1" not in lines and "--gres" not in s
    (launch,) = [x for x in lines if x.startswith("srun ")]
    assert "--ntasks-per-node=4" in launch and "--gpus-per-node=4" in launch and launch.endswith("rank_main &")
    for part in (
        "export RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID LOCAL_WORLD_SIZE=4",
        "ranks $RANK-$((RANK + 3)) of $WORLD_SIZE, store at $MASTER_ADDR:$MASTER_PORT",
        '"$PY" -c ',
    ):
        assert part in s, part
    assert "torch.distributed.run" not in s  # no torchrun: SLURM starts and ranks the processes
    # rank 0's store is on the first node, reached at its NodeAddr (the host name may resolve to loopback)
    assert 'MASTER_ADDR=$(node_addr "$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)")' in s
    # an experiment pinned to the CPU asks for no GPUs: --gpus counts gloo processes per node
    cpu_exp = {**EXPERIMENT, "training": {"epochs": 3, "device": "cpu"}}
    s3 = be.render(Job(job_id="j", experiment=cpu_exp, folds=[0], bundle=fixed_bundle(), gpus=2))["job.sbatch"]
    assert "gpus-per-node" not in s3 and "--gres" not in s3 and "#SBATCH --ntasks-per-node=2" in s3
    # one node, one process: the simple path; bad node counts fail naming the value
    assert "\nsrun " not in get_backend("slurm", nodes=1).render(golden_job([0], gpus=1))["job.sbatch"]
    with pytest.raises(BackendError, match="nodes=0"):
        get_backend("slurm", nodes=0).render(golden_job([0]))


@pytest.fixture
def small_project(small_project):
    import subprocess

    (small_project / "pkg" / "fake_trainer.sh").write_text(FAKE_TRAINER_SH)
    subprocess.run(["git", "add", "."], cwd=small_project, check=True)
    return small_project


@pytest.fixture
def slurm(cluster, tmp_path):
    def make(**kw):
        kw = {"venv": str(ROOT / ".venv"), "time": "00:05:00", "mem": "200M", "cpus": 1, **kw}
        return get_backend("slurm", remote_root=str(tmp_path / "remote"), **kw)

    return make


def set_modes(rec, modes: dict[int, str]):
    from pathlib import Path

    jd = Path(rec.handle["job_dir"])
    for f, m in modes.items():
        (jd / f"mode{f}").write_text(m)


@pytest.mark.integration
def test_array_complete_failed_and_log_tail(slurm, small_project, tmp_path):
    be = slurm(train_cmd='"$PY" -m pkg.hello "$FOLD" && [ "$FOLD" != 4 ] || { echo "Traceback: boom" >&2; exit 3; }')
    rec = be.launch(make_job(small_project, tmp_path / "b", "s-array", folds=[0, 4]))
    assert rec.handle["slurm_job_id"].isdigit() and jobs.load("s-array").state == "pending"
    st = wait_state(be, rec, timeout=90)
    assert st.tasks == {0: "complete", 4: "failed"}, st.detail
    assert st.state == "failed" and "Traceback: boom" in st.log_tail
    logs = "".join(be.logs(rec))
    assert "hello from the bundle, fold 0" in logs and "==> fold 4 <==" in logs
    assert "hello from the bundle, fold 0" in "".join(be.logs(rec, fold=0))
    # with accounting disabled (sacct unusable), the exit files the tasks leave give the same answer
    quiet = backend_for(jobs.load("s-array"))
    quiet.options.accounting = False
    assert quiet.status(rec).tasks == {0: "complete", 4: "failed"}


@pytest.mark.integration
def test_exit_75_requeues_until_max_restarts(slurm, small_project, tmp_path):
    be = slurm(train_cmd=FAKE_TRAINER, max_restarts=1)
    job = make_job(small_project, tmp_path / "b", "s-requeue", folds=[0, 1])
    # hold the job until the per-fold modes are written, so no task runs before it knows its mode
    rec = be.launch(Job(**{**job.__dict__, "options": {"sbatch_extra": ["--hold"]}}))
    set_modes(rec, {0: "deadline_once", 1: "always_75"})
    import subprocess

    subprocess.run(["scontrol", "release", rec.handle["slurm_job_id"]], check=True)
    st = wait_state(be, rec, timeout=150, poll=1)
    assert st.tasks == {0: "complete", 1: "incomplete"}, st.detail
    assert st.state == "incomplete"
    log0 = "".join(be.logs(rec, fold=0))
    assert "attempt restart=0 fold=0 resume_from=none" in log0
    assert "incomplete: requeueing (restart 1/1)" in log0
    assert "attempt restart=1 fold=0 resume_from=step1" in log0
    log1 = "".join(be.logs(rec, fold=1))
    assert log1.count("attempt restart=") == 2 and "max_restarts (1) reached: stopping" in log1


@pytest.mark.integration
def test_cancel(slurm, small_project, tmp_path):
    be = slurm(train_cmd="sleep 300")
    rec = be.launch(make_job(small_project, tmp_path / "b", "s-cancel", folds=[0, 1]))
    wait_state(be, rec, states=("running",), timeout=60)
    be.cancel(rec)
    st = wait_state(be, rec, timeout=60)
    assert st.state == "cancelled" and set(st.tasks.values()) == {"cancelled"}


@pytest.mark.integration
@pytest.mark.slow
def test_time_limit_signal_requeue_resume(slurm, small_project, tmp_path):
    """--time=1 min, USR1 50 s before: the trainer checkpoints on USR1, exits 75, the task is requeued and
    the rerun resumes from the checkpoint (SLURM checks time limits every 30 s: this takes 40-90 s)."""
    be = slurm(train_cmd=FAKE_TRAINER, time="00:01:00", signal_margin_s=50, max_restarts=2)
    job = make_job(small_project, tmp_path / "b", "s-usr1", folds=[0])
    rec = be.launch(Job(**{**job.__dict__, "options": {"sbatch_extra": ["--hold"]}}))
    set_modes(rec, {0: "wait_signal"})
    import subprocess

    subprocess.run(["scontrol", "release", rec.handle["slurm_job_id"]], check=True)
    st = wait_state(be, rec, timeout=200, poll=2)
    log = "".join(be.logs(rec))
    assert st.state == "complete", log
    assert "USR1: time limit near" in log and "got USR1: checkpoint" in log
    assert "trainer exit 75 (signalled: 1)" in log and "incomplete: requeueing (restart 1/2)" in log
    assert "attempt restart=1 fold=0 resume_from=step7" in log and "resumed from step7" in log


@pytest.mark.integration
@pytest.mark.slow
def test_real_trainer_stops_requeues_and_resumes(slurm, tmp_path):
    """The real trainer on the demo experiment: the first attempt stops at its deadline after one step
    (exit 75), SLURM requeues the task, the second attempt resumes from the checkpoint and completes."""
    import json

    from molremote.backends import _remote
    from molremote.bundle import make_bundle
    from molremote.experiments import Registry

    reg = Registry(ROOT / "experiments")
    exp = reg.resolve(1 if 1 in reg.ids() else reg.ids()[0])
    job = Job(
        job_id="s-real",
        experiment=exp.to_json(),
        folds=[0],
        bundle=make_bundle(ROOT, tmp_path / "b"),
        train_args=["--set", "training.epochs=2", "--set", "training.max_steps_per_epoch=3"],
    )
    be = slurm(time="00:10:00", mem="3G", max_restarts=2)
    # only the first attempt gets a 1 s deadline (checked after each step): it stops after its first step
    cmd = _remote.train_cmd(job, be.options) + ' $([ "${SLURM_RESTART_COUNT:-0}" = 0 ] && echo --max-time 1s)'
    be = slurm(time="00:10:00", mem="3G", max_restarts=2, train_cmd=cmd)
    rec = be.launch(job)
    st = wait_state(be, rec, timeout=500, poll=3)
    log = "".join(be.logs(rec))
    assert st.state == "complete", log[-3000:]
    assert "trainer exit 75 (signalled: 0)" in log and "incomplete: requeueing (restart 1/2)" in log
    dest = be.fetch(rec, tmp_path / "runs")
    (manifest,) = dest.glob(f"{exp.name}/fold0-*/manifest.json")
    m = json.loads(manifest.read_text())
    assert m["status"] == "complete"
    assert [s.get("status") for s in m["sessions"]] == ["incomplete", "complete"], m["sessions"]
    assert m["machine"].get("slurm_job_id") and m["code"]["commit"] == job.bundle.commit


@pytest.mark.integration
@pytest.mark.slow
def test_ddp_srun_two_gloo_processes(slurm, tmp_path):
    """--nodes 1 --gpus 2 on the CPU loopback cluster: the srun path (one task per process, env:// init) trains
    the demo experiment with 2 gloo processes to completion; rank 0 alone writes the run folder."""
    import json

    from molremote.bundle import make_bundle
    from molremote.experiments import Registry

    exp = Registry(ROOT / "experiments").resolve(1)
    assert exp.training.device == "cpu"
    job = Job(
        job_id="s-ddp",
        experiment=exp.to_json(),
        folds=[0],
        bundle=make_bundle(ROOT, tmp_path / "b"),
        gpus=2,
        train_args=["--set", "training.epochs=1", "--set", "training.max_steps_per_epoch=5"],
    )
    be = slurm(time="00:05:00", mem="3G", cpus=2, nodes=1, signal_margin_s=30)  # the default 300 s = --time
    rec = be.launch(job)
    st = wait_state(be, rec, timeout=150, poll=1)
    log = "".join(be.logs(rec))
    assert st.state == "complete", log[-3000:]
    assert "fold 0: trainer exit 0" in log and "USR1" not in log
    dest = be.fetch(rec, tmp_path / "runs")
    (run_dir,) = [m.parent for m in dest.glob(f"{exp.name}/fold0-*/manifest.json")]
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "complete" and m["world_size"] == 2, m
    assert m["machine"].get("slurm_job_id") == rec.handle["slurm_job_id"]
    for f in (
        "config.json",
        "metrics.jsonl",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
        "predictions/valid.parquet",
    ):
        assert (run_dir / f).is_file(), f
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    # rank 0 alone writes (one epoch row, not two); 5 global steps whatever the number of processes
    assert [(r["epoch"], r["step"]) for r in rows if "valid_belka_ap" in r] == [(0, 5)], rows


@pytest.mark.integration
@pytest.mark.slow
def test_ddp_srun_usr1_requeues_and_resumes(slurm, tmp_path):
    """USR1 to the batch shell mid-training (what --signal=B:USR1@margin sends) reaches both DDP workers
    through srun; they checkpoint and exit 75 (the manifest confirms it: a rank stopped by its peer may exit 1);
    the task requeues and the second attempt resumes under DDP to completion."""
    import json
    import subprocess
    import time
    from pathlib import Path

    from molremote.bundle import make_bundle
    from molremote.experiments import Registry

    exp = Registry(ROOT / "experiments").resolve(1)
    job = Job(
        job_id="s-ddp-usr1",
        experiment=exp.to_json(),
        folds=[0],
        bundle=make_bundle(ROOT, tmp_path / "b"),
        gpus=2,
        train_args=["--set", "training.epochs=3", "--set", "training.max_steps_per_epoch=4"],
    )
    be = slurm(time="00:05:00", mem="3G", cpus=2, nodes=1, max_restarts=2, signal_margin_s=30)
    rec = be.launch(job)
    sid = rec.handle["slurm_job_id"]
    runs = Path(rec.handle["job_dir"]) / "runs" / exp.name
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size for p in runs.glob("fold0-*/metrics.jsonl")):  # epoch 1 done: mid-training
        assert time.monotonic() < deadline, "".join(be.logs(rec))[-3000:]
        time.sleep(0.2)
    subprocess.run(["scancel", "--batch", "--signal=USR1", sid], check=True)
    st = wait_state(be, rec, timeout=200, poll=1)
    log = "".join(be.logs(rec))
    assert st.state == "complete", log[-3000:]
    assert log.count("USR1: time limit near") == 1 and "trainer exit 75 (signalled: 1)" in log
    assert "stopped (SIGUSR1)" in log and "incomplete: requeueing (restart 1/2)" in log
    assert "fold 0: trainer exit 0" in log
    (manifest,) = be.fetch(rec, tmp_path / "runs").glob(f"{exp.name}/fold0-*/manifest.json")
    m = json.loads(manifest.read_text())
    assert m["status"] == "complete" and m["world_size"] == 2
    assert [s.get("status") for s in m["sessions"]] == ["incomplete", "complete"], m["sessions"]
    rows = [json.loads(x) for x in (manifest.parent / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if "valid_belka_ap" in r] == [0, 1, 2], rows  # resumed, nothing repeated


def test_signal_margin_never_swallows_the_whole_limit():
    be = get_backend("slurm", time="00:05:00")  # the default margin (300 s) equals the limit
    text = be.render(golden_job([0]))["job.sbatch"]
    assert "#SBATCH --signal=B:USR1@150" in text
    text = get_backend("slurm", time="01:00:00").render(golden_job([0]))["job.sbatch"]
    assert "#SBATCH --signal=B:USR1@300" in text
