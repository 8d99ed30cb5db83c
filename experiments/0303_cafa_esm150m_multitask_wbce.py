"""CAFA-6: 301 with the write-up's simpler alternative to focal loss, BCE with per-term positive weights
(neg / (pos + 1), normalised to a minimum of 1 and capped at 10x so ultra-rare terms do not dominate)."""
from molremote.experiments import derive

EXPERIMENT = derive(
    301,
    description="CAFA-6: 301 with weighted BCE (pos_weight capped at 10)",
    tags=["cafa", "esm2-150m", "multitask", "weighted-bce"],
    task={"loss": "weighted_bce", "pos_weight_cap": 10.0},
)
