"""CAFA-6: 301 with the write-up's other schedule, cosine annealing over the epochs (CosineAnnealingLR,
T_max = epochs) instead of ReduceLROnPlateau: a fixed budget, no dependence on a noisy validation curve."""
from molremote.experiments import derive

EXPERIMENT = derive(
    301,
    description="CAFA-6: 301 with a cosine schedule",
    tags=["cafa", "esm2-150m", "multitask", "focal", "cosine"],
    training={"scheduler": "cosine",
              "early_stopping_patience": None},  # cosine needs its full budget to reach the low rates
)
