"""BELKA 5th place (private 0.28557 as an ensemble), its mamba member on the real competition data.

Character tokens -> embedding + Conv1d k=3 -> pre-norm Mamba blocks (d_state 16, d_conv 4, expand 2, the
write-up's values) -> masked mean pool -> 3 logits. mamba_ssm's fused kernels on CUDA when the `gpu` extra is
installed, else mambapy's pure-torch scan (same parameter names: checkpoints move between the two). The
write-up gives d_model 128-256 and 4-8 layers; one fold (fold 0, ~36 h on an A6000).

Data: as 0100 (data.root data/belka)."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="BELKA 5th place mamba (d192, 6 layers), real data, fold 0 of 5",
    tags=["belka", "5th-place", "mamba"],
    task={"name": "belka"},
    model={"name": "mamba", "d_model": 192, "n_layers": 6,  # write-up: d_model 128-256, 4-8 layers
           "d_state": 16, "d_conv": 4, "expand": 2, "dropout": 0.1},
    training={"epochs": 8, "batch_size": 2500, "eval_batch_size": 8192,
              "optimizer": "adam", "lr": 1e-3,
              "warmup_steps": 1000,  # as the transformer: deep pre-norm stack, Adam at 1e-3
              "scheduler": "step", "milestones": [5, 7], "gamma": 0.1,  # 1e-3 / 1e-4 / 1e-5
              "amp": "bf16",
              "checkpoint_every_s": 900.0},
    folds={"n_folds": 5, "scheme": "random", "seed": 0, "run": [0]},  # the write-up's mamba fold
    data={"root": "data/belka"},
)
