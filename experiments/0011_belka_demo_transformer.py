"""BELKA demo (as experiment 1) with a tiny transformer of the 5th-place shape (conv embedding, pre-LN,
masked mean pool): trains in ~40 s on a 2-core CPU (belka_ap ~0.12 vs ~0.03 for a constant predictor)."""
from molremote.experiments import derive

EXPERIMENT = derive(
    1,
    description="BELKA demo: tiny transformer (d32, 1 layer) on character tokens",
    tags=["belka", "demo", "transformer"],
    model={"name": "transformer", "d_model": 32, "n_layers": 1, "n_heads": 4,  # ~20k parameters: CPU seconds
           "ff_mult": 2, "dropout": 0.1},
    training={"epochs": 2, "lr": 3e-3, "milestones": [1]},  # 2 epochs x ~26 steps: under a minute on CPU
)
