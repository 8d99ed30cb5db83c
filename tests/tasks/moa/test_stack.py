"""The demo stack through the real CLI: experiment 31 (stage 2, scored targets) stacked on experiment 30 (stage 1,
non-scored targets). Before 30 exists, 31 stops with exit 3 naming the command that makes it (and leaves no run
folder); after `train -e 30 --all-folds`, 31 trains on its features plus 30's 11 out-of-fold predictions and
evaluates; an experiment whose folds differ from its parent's is refused with exit 2 naming both."""

from __future__ import annotations

import json

import pytest

from molremote.tasks.moa.metric import mean_columnwise_log_loss
from molremote.tasks.moa.results import read_valid
from tests.conftest import write_experiment

from .test_cli import cli, with_experiments

STAGES = ("0003_moa_demo_mlp.py", "0030_moa_demo_stage1_nonscored.py", "0031_moa_demo_stage2_stacked.py")


@pytest.mark.slow  # three training processes (5 stage-1 folds, 1 stage-2 fold) + evaluate: 40-100 s, busy 2 cores
@pytest.mark.integration
def test_stage2_trains_on_stage1_out_of_fold_predictions(project):
    import torch

    with_experiments(project, *STAGES)
    r = cli(project, "train", "-e", "31", "--no-progress")
    assert r.returncode == 3, r.stderr
    assert "stacks on experiment 0030_moa_demo_stage1_nonscored" in r.stderr
    assert "Make them with `molremote train -e 30 --all-folds`" in r.stderr
    assert not (project / "runs" / "0031_moa_demo_stage2_stacked").exists() or not any(
        (project / "runs" / "0031_moa_demo_stage2_stacked").iterdir()
    )

    r = cli(project, "train", "-e", "30", "--all-folds", "--no-progress")
    assert r.returncode == 0, r.stderr
    stage1 = sorted((project / "runs" / "0030_moa_demo_stage1_nonscored").glob("fold*"))
    assert len(stage1) == 5
    _, cols1, _, _ = read_valid(stage1[0] / "predictions" / "valid.parquet")
    assert cols1 == [f"louvain_{i}" for i in range(11)]  # stage 1 learned the non-scored targets

    r = cli(project, "train", "-e", "31", "--no-progress")
    assert r.returncode == 0, r.stderr
    run = next((project / "runs" / "0031_moa_demo_stage2_stacked").glob("fold0-*"))
    m = json.loads((run / "manifest.json").read_text())
    (src,) = m["stacked_on"]
    assert (src["experiment"], src["columns"], len(src["runs"])) == (30, 11, 5)
    base = json.loads((run / "preprocess" / "preprocess.json").read_text())["n_features"]
    weights = torch.load(run / "checkpoints" / "best.pt", map_location="cpu", weights_only=False)["model"]
    first_bn = next(v for k, v in weights.items() if k.endswith("running_mean"))
    assert first_bn.shape == (base + 11,)  # the model saw the 11 stage-1 predictions as extra features

    r = cli(project, "evaluate", "-e", "31", "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    _, cols2, y, p = read_valid(run / "predictions" / "valid.parquet")
    assert len(cols2) == 14 and ev["fold_scores"]["0"] == pytest.approx(mean_columnwise_log_loss(y, p), abs=1e-12)
    assert ev["fold_scores"]["0"] < ev["baseline"]["0"]  # beats the per-column prior


@pytest.mark.integration
def test_stacking_on_other_folds_exits_2_naming_both(project):
    with_experiments(project, *STAGES)
    write_experiment(project, "0033_moa_other_folds.py", 'EXPERIMENT = derive(31, folds={"n_folds": 4})\n')
    r = cli(project, "train", "-e", "33", "--no-progress")
    assert r.returncode == 2, r.stderr
    assert "0033_moa_other_folds stacks on 0030_moa_demo_stage1_nonscored, but their folds differ" in r.stderr
    assert "n_folds=4" in r.stderr and "n_folds=5" in r.stderr
    assert "Traceback" not in r.stderr


REAL = ("0201_moa_1st_3stage_nn_stage1.py", "0202_moa_1st_3stage_nn_stage2.py", "0203_moa_1st_3stage_nn_stage3.py")


@pytest.mark.integration
@pytest.mark.parametrize("exp_id", ["201", "202", "203"])
def test_real_3stage_experiments_refuse_with_exit_3_and_the_download_command(project, exp_id):
    with_experiments(project, *REAL)
    r = cli(project, "train", "-e", exp_id, "--no-progress")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "data/moa/train_features.csv not found" in r.stderr
    assert "kaggle competitions download -c lish-moa" in r.stderr
    assert not (project / "runs").exists() or not any((project / "runs").rglob("manifest.json"))


def test_real_3stage_chain_resolves_with_the_winners_settings(project):
    from molremote.experiments import Registry
    from molremote.tasks.moa.params import MoaParams

    with_experiments(project, *REAL)
    reg = Registry()
    s1, s2, s3 = (reg.resolve(i) for i in (201, 202, 203))
    t1, t2, t3 = (MoaParams(**e.task.params) for e in (s1, s2, s3))
    assert (t1.targets, t1.fa_genes, t1.umap_genes, t1.fa_cells, t1.umap_cells) == ("nonscored", 90, 45, 50, 25)
    assert (t1.label_smoothing, t2.label_smoothing, t3.label_smoothing) == (0.001, 0.0, 0.001)
    assert (s1.training.epochs, s1.model.params["hidden"]) == (15, 2048)
    assert (t2.targets, t2.stack_quantile, s2.training.epochs, s2.model.params["hidden"]) == ("scored", True, 25, 2048)
    assert (t3.base_features, t3.stack_quantile, s3.training.epochs, s3.model.params["hidden"]) == (
        False,
        True,
        25,
        1024,
    )
    assert [e.training.seeds for e in (s1, s2, s3)] == [[0, 1, 2, 3, 4]] * 3
    (p2,), (p3,) = s2.data.stack, s3.data.stack
    assert (p2.experiment, p2.name, p2.config_hash, p2.seeds) == (201, s1.name, s1.config_hash, [0, 1, 2, 3, 4])
    assert (p3.experiment, p3.config_hash) == (202, s2.config_hash)
    assert p2.folds == p3.folds == {"n_folds": 5, "scheme": "mskf", "seed": 0}
