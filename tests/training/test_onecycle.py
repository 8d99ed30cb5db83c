"""OneCycleLR as a trainer scheduler: the same lr and momentum as torch's OneCycleLR at every step, and a run
killed mid-cycle resumes bit-identically (the schedule is a pure function of the checkpointed step)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from molremote.experiments import validate
from molremote.training.trainer import Schedule
from tests.training import toy
from tests.training.test_trainer import (
    _wait_for_mid_epoch_checkpoint,
    assert_same_weights,
    cli,
    popen,
    stable_metrics,
    toy_exp,
)


def _exp(optimizer: str = "adam", **training):
    return validate(
        {
            "id": 1,
            "slug": "t",
            "task": {"name": "moa"},
            "model": {"name": "tabular_mlp"},
            "training": {"scheduler": "onecycle", "optimizer": optimizer, "epochs": 3, **training},
        },
        file=None,
    )


@pytest.mark.parametrize(
    ("optimizer", "training"),
    [
        ("adam", {"lr": 5e-3, "max_lr": 1e-2, "pct_start": 0.2, "div_factor": 1e3}),  # the MoA 3-stage NN's
        ("adamw", {"lr": 1e-3}),  # torch's defaults, max_lr = lr
        ("sgd", {"lr": 0.1, "max_lr": 0.3, "pct_start": 0.25, "final_div_factor": 100.0}),
    ],
)
def test_onecycle_follows_torchs_onecycle_lr_and_momentum(optimizer, training):
    exp = _exp(optimizer, **training)
    steps_per_epoch = 7
    mine = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=exp.training.lr)
    if optimizer == "sgd":
        mine = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=exp.training.lr, momentum=0.9)
    ref_opt = type(mine)([torch.nn.Parameter(torch.zeros(1))], **{k: v for k, v in mine.defaults.items()})
    t = exp.training
    ref = torch.optim.lr_scheduler.OneCycleLR(
        ref_opt,
        max_lr=t.max_lr or t.lr,
        total_steps=t.epochs * steps_per_epoch,
        pct_start=t.pct_start,
        div_factor=t.div_factor,
        final_div_factor=t.final_div_factor,
    )
    sched = Schedule(exp, mine, steps_per_epoch)
    key = "betas" if optimizer != "sgd" else "momentum"
    lrs = []
    for step in range(t.epochs * steps_per_epoch):
        sched.at(step, step // steps_per_epoch)
        g, r = mine.param_groups[0], ref_opt.param_groups[0]
        assert g["lr"] == pytest.approx(r["lr"], rel=1e-12, abs=1e-18), step
        assert g[key] == pytest.approx(r[key], rel=1e-12), step
        lrs.append(g["lr"])
        ref_opt.step()
        ref.step()
    peak = t.max_lr or t.lr
    assert max(lrs) == pytest.approx(peak, rel=0.02)  # the peak falls between two steps
    assert lrs[0] == pytest.approx(peak / t.div_factor)
    assert lrs[-1] < lrs[0]


def test_pct_start_outside_0_1_is_refused():
    from molremote.errors import ExperimentError

    with pytest.raises(ExperimentError, match="pct_start"):
        _exp(pct_start=1.0)


@pytest.fixture
def _toy():
    toy.register()


@pytest.mark.slow  # two trainer processes and a kill: ~10 s
def test_onecycle_run_killed_mid_cycle_resumes_bit_identically(_toy, project, tmp_path):
    toy_exp(
        project,
        task=', "sleep_s": 0.01',
        training='"batch_size": 16, "checkpoint_every_steps": 3, "scheduler": "onecycle", "max_lr": 0.05, '
        '"pct_start": 0.4, "div_factor": 100.0',
    )
    ref = cli(project, "train", "-e", "1")
    assert ref.returncode == 0, ref.stderr
    ref_dir = Path(ref.stdout.strip().splitlines()[-1])
    os.replace(ref_dir, tmp_path / "ref")
    lrs = [r["lr"] for r in stable_metrics(tmp_path / "ref") if "train_loss" in r]
    assert lrs[0] < lrs[len(lrs) // 3] and lrs[-1] < lrs[0]  # it did cycle: up, then below the start

    proc = popen(project, "train", "-e", "1")
    _wait_for_mid_epoch_checkpoint(lambda: list((project / "runs").glob("0001_toy/fold0-*/checkpoints/last.pt")), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = next((project / "runs").glob("0001_toy/fold0-*"))
    r = cli(project, "train", "-e", "1")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr
    assert_same_weights(run_dir / "checkpoints/last.pt", tmp_path / "ref/checkpoints/last.pt")
    assert stable_metrics(run_dir) == stable_metrics(tmp_path / "ref")
    state = torch.load(run_dir / "checkpoints/last.pt", map_location="cpu", weights_only=False)
    assert state["scheduler"]["total"] == state["step"]  # the whole cycle ran
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
