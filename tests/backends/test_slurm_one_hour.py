"""Experiment 420's promise, scaled down (issue 14 item 4): the affinity CLIP demo on the loopback SLURM cluster
with a 1-minute wall time instead of one hour. SLURM's USR1 before the limit makes the trainer checkpoint and
exit 75, the job requeues itself and resumes, several times; every session logs to one W&B run id (offline
files read back); the final weights equal one uninterrupted local run bit for bit; the run folder and the store
are group-readable (the write-up lost time to checkpoint folders other team members could not open)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from molremote.backends import get_backend
from molremote.backends.base import Job
from molremote.bundle import make_bundle
from molremote.experiments import Registry
from molremote.tracking import offline_runs, wandb_run_id

from .conftest import ROOT, wait_state

# The demo's model at 4 epochs (52 steps). SLURM checks limits every ~30 s, so USR1 comes up to 30 s before the margin,
# and a loaded 2-core machine spends 20-40 s starting a session (torch, data, W&B) and 10-30 s stopping it
# (checkpoint, store push, W&B): a 1-minute limit left no training time at all here (measured: USR1 24-41 s
# after the start, the second session killed by the limit while it stopped), so the twin runs 2-minute
# sessions with USR1 45 s before the end (it comes 45-75 s before): still several sessions, each of which trains
# (measured at load ~9: 3 sessions, USR1 at 59 / 66 / 72 s, 7 / 16 / 29 steps; the test took 272 s).
TWIN = """from molremote.experiments import derive

EXPERIMENT = derive(
    5,
    description="420's one-hour wall time scaled to one minute (test twin)",
    training={"epochs": 4, "checkpoint_every_s": 600},
    backend={"slurm": {"time": "00:02:00", "signal_margin_s": 45, "max_restarts": 10, "cpus": 1, "mem": "1G"}},
)
"""


def group_readable(root: Path) -> list[str]:
    """Paths under root another member of the group could not read (files) or enter (folders)."""
    bad = []
    for p in [root, *root.rglob("*")]:
        if p.is_symlink():
            continue
        m = p.stat().st_mode
        need = stat.S_IRGRP | (stat.S_IXGRP if p.is_dir() else 0)
        if m & need != need:
            bad.append(f"{p.relative_to(root)} {stat.filemode(m)}")
    return bad


@pytest.mark.integration
@pytest.mark.slow
def test_one_minute_limit_requeues_resumes_keeps_one_wandb_run_and_ends_on_the_uninterrupted_weights(
    cluster, tmp_path, monkeypatch
):
    project = tmp_path / "proj"
    (project / "experiments").mkdir(parents=True)
    for name in ("0005_affinity_demo_clip.py",):
        (project / "experiments" / name).write_text((ROOT / "experiments" / name).read_text())
    (project / "experiments" / "0421_affinity_slurm_1min_twin.py").write_text(TWIN)
    store = tmp_path / "store"
    store.mkdir()
    env = {
        "MOLREMOTE_PROJECT": str(project),
        "MOLREMOTE_WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "OMP_NUM_THREADS": "1",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    exp = Registry(project / "experiments").resolve(421)
    assert exp.backend.slurm.time == "00:02:00"

    # the experiment's backend.slurm section gives time, signal margin, restarts, cpus and memory
    be = get_backend("slurm", remote_root=str(tmp_path / "remote"), venv=str(ROOT / ".venv"))
    rec = be.launch(Job(job_id="s-1h", experiment=exp.to_json(), folds=[0], bundle=make_bundle(ROOT, tmp_path / "b")))

    # meanwhile, the same experiment uninterrupted here, without a store or W&B
    ref_env = {k: v for k, v in os.environ.items() if k != "MOLREMOTE_STORE"}
    ref_env.update(MOLREMOTE_WANDB_MODE="disabled", MOLREMOTE_RUNS=str(tmp_path / "ref"))
    ref = subprocess.run(
        [sys.executable, "-m", "molremote", "train", "-e", "421", "--no-progress"],
        cwd=project,
        env=ref_env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert ref.returncode == 0, ref.stderr
    ref_dir = Path(ref.stdout.strip().splitlines()[-1])

    st = wait_state(be, rec, timeout=900, poll=3)
    log = "".join(be.logs(rec))
    assert st.state == "complete", log[-3000:]
    assert log.count("trainer exit 75") >= 2 and "USR1: time limit near" in log, log[-3000:]
    (run_dir,) = [p.parent for p in (tmp_path / "remote").rglob("0421_affinity_slurm_1min_twin/fold0-*/manifest.json")]
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "complete" and len(m["sessions"]) >= 3
    assert sum(s.get("status") == "incomplete" for s in m["sessions"]) >= 2
    # one W&B run id across every session: the id derived from (experiment, fold, config hash)
    runs = offline_runs(run_dir)
    assert list(runs) == [wandb_run_id(421, 0, exp.config_hash)], runs
    assert len(runs[wandb_run_id(421, 0, exp.config_hash)]) == len(m["sessions"])
    # bit-identical to the uninterrupted run
    a = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["model"]
    b = torch.load(ref_dir / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # group-readable run folder and store copy
    assert group_readable(run_dir) == []
    push_env = {**ref_env, "MOLREMOTE_STORE": str(store)}
    push = subprocess.run(
        [sys.executable, "-m", "molremote", "push", "-e", "421"],
        cwd=project,
        env=push_env,
        capture_output=True,
        text=True,
    )
    assert push.returncode == 0, push.stderr
    (stored,) = [p.parent for p in store.rglob("0421_affinity_slurm_1min_twin/fold0-*/manifest.json")]
    assert group_readable(stored) == []
