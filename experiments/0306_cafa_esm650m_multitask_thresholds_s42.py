"""CAFA-6 ensemble member 3 of 3: 304 on ESM-2 650M embeddings (1280 dims; write-up: "+5-8% F1" over 150M,
twice the embedding time: 224k test sequences are a multi-GPU-hour job, shardable with `molremote embed
--shard i/n`). Ensemble command in experiments/0304_*.py."""
from molremote.experiments import derive

EXPERIMENT = derive(
    304,
    description="CAFA-6: 304 on ESM-2 650M embeddings, seed 42 (ensemble member 3/3)",
    tags=["cafa", "esm2-650m", "multitask", "focal", "thresholds", "ensemble"],
    task={"embedding": "facebook/esm2_t33_650M_UR50D"},
)
