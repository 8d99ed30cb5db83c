"""CAFA-6 ensemble member 2 of 3: 304 with seed 123 (the write-up's second 150M model; same embeddings from the
cache, another initialisation and batch order). Ensemble command in experiments/0304_*.py."""
from molremote.experiments import derive

EXPERIMENT = derive(
    304,
    description="CAFA-6: 304 with seed 123 (ensemble member 2/3)",
    training={"seed": 123},
)
