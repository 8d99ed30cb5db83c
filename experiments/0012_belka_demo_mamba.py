"""BELKA demo (as experiment 1) with a tiny mamba of the 5th-place shape, on the pure-torch scan (mambapy):
trains in ~40 s on a 2-core CPU (belka_ap ~0.08 vs ~0.03 for a constant predictor)."""
from molremote.experiments import derive

EXPERIMENT = derive(
    1,
    description="BELKA demo: tiny mamba (d16, 1 layer, pure-torch scan) on character tokens",
    tags=["belka", "demo", "mamba"],
    model={"name": "mamba", "d_model": 16, "n_layers": 1, "d_state": 8,  # the pure-torch scan costs
           "expand": 2, "dropout": 0.1},                                   # B x L x 2d x d_state per layer
    training={"epochs": 2, "lr": 3e-3, "milestones": [1],
              "max_steps_per_epoch": 24},  # 2 x 24 steps of 256: the pure-torch scan is ~40x slower than the CNN
)
