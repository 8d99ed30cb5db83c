"""CAFA-6 ensemble member 1 of 3 (write-up: 150M seed 42, 150M seed 123, 650M seed 42): 301 plus per-term
thresholds searched on the validation fold (0.10 .. 0.85 step 0.05, best F1 per term; "+3-5% F1"), saved
with the run (predictions/thresholds.json) and applied to the test predictions and the submission.

The ensemble (scores averaged per (protein, term), a missing pair counting as 0):
    molremote train -e 304 && molremote train -e 305 && molremote train -e 306
    molremote ensemble -e 304 -e 305 -e 306 --submit
(`evaluate -e N` averages one experiment's folds the same way; long-format alignment in `ensemble` is the
core's, results/averaging.py.)"""
from molremote.experiments import derive

EXPERIMENT = derive(
    301,
    description="CAFA-6: 301 + per-term thresholds, seed 42 (ensemble member 1/3)",
    tags=["cafa", "esm2-150m", "multitask", "focal", "thresholds", "ensemble"],
    task={"per_term_thresholds": True},
    training={"seed": 42},
)
