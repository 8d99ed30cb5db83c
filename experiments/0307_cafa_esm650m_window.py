"""CAFA-6: 306 with sliding windows (1022 residues, stride 511, windows mean-pooled) instead of head + tail
truncation for the 24.8% of proteins longer than 1024: the write-up's "+2-3% F1, 3-4x slower" option."""
from molremote.experiments import derive

EXPERIMENT = derive(
    306,
    description="CAFA-6: 306 with sliding-window embeddings",
    tags=["cafa", "esm2-650m", "window"],
    task={"embedding_policy": "window"},
)
