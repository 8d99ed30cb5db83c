"""--gpus N: torchrun + DDP, tested on CPU with gloo and 2 processes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from tests.conftest import write_experiment
from tests.training.test_trainer import TOY, cli, weights


def _exp(project: Path, epochs: int = 2, sleep: float = 0.0) -> None:
    write_experiment(
        project,
        "0001_toy.py",
        TOY.format(epochs=epochs, task=f', "sleep_s": {sleep}', training='"batch_size": 32').replace(
            'model="toy_mlp"', 'model={"name": "toy_mlp", "dropout": 0.0}'
        ),
    )


@pytest.mark.slow
@pytest.mark.integration
def test_two_process_ddp_matches_single_process(project, tmp_path):
    _exp(project)
    single = cli(project, "train", "-e", "1")
    assert single.returncode == 0, single.stderr
    single_dir = Path(single.stdout.strip().splitlines()[-1])
    os.replace(single_dir, tmp_path / "single")

    ddp = cli(project, "train", "-e", "1", "--gpus", "2", timeout=300)
    assert ddp.returncode == 0, ddp.stderr
    run_dir = Path(ddp.stdout.strip().splitlines()[-1])
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "complete" and m["world_size"] == 2
    # rank 0 alone writes: one metrics row per step / epoch, not two
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "train_loss" in r]
    assert steps == sorted(set(steps)) and len(steps) == 2 * 12  # 384 train rows / 32 per global batch
    # the fold's preparation: rank 0 first and alone, then rank 1 (which reads what rank 0 saved)
    assert (run_dir / "prepare.log").read_text().split("\n")[:-1] == ["start 0", "end 0", "start 1", "end 1"]
    # same global batch, gradients averaged over two half-batches: the same model up to float rounding
    a, b = weights(run_dir / "checkpoints/last.pt"), weights(tmp_path / "single/checkpoints/last.pt")
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


@pytest.mark.slow
@pytest.mark.integration
def test_ddp_stops_at_deadline_and_resumes(project):
    # >= 11 s of training: the 8 s deadline hits mid-run, and not while a loaded machine is still starting
    # the two ranks (a 3 s deadline could pass on one rank before the first all-reduced stop check)
    _exp(project, epochs=5, sleep=0.2)
    first = cli(project, "train", "-e", "1", "--gpus", "2", "--max-time", "8s", timeout=300)
    assert first.returncode == 75, first.stderr
    run_dir = Path(first.stdout.strip().splitlines()[-1])
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "incomplete"
    second = cli(project, "train", "-e", "1", "--gpus", "2", timeout=300)
    assert second.returncode == 0, second.stderr
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "complete" and len(m["sessions"]) == 2


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGUSR1"])
def test_signal_to_the_parent_reaches_every_rank(project, sig):
    import signal

    from tests.training.test_trainer import _wait_for_mid_epoch_checkpoint, popen

    _exp(project, epochs=20, sleep=0.05)
    proc = popen(project, "train", "-e", "1", "--gpus", "2")
    _wait_for_mid_epoch_checkpoint(
        lambda: list((project / "runs").glob("0001_toy/fold0-*/checkpoints/last.pt")), proc, min_pos=0, timeout=120
    )
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err[-3000:]
    run_dir = Path(out.strip().splitlines()[-1])
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "incomplete" and m["stop_reason"] in (sig, "peer stopped")
    assert "terminate called" not in err  # ranks leave the process group cleanly
