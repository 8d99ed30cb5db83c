"""Experiment 400 with the regression head trained on the towers' embeddings with gradients stopped: the
embedding space stays purely contrastive, and the head measures how much pK it already encodes."""
from molremote.experiments import derive

EXPERIMENT = derive(
    400,
    description="affinity CLIP reference + pK regression head on frozen (detached) embeddings",
    model={"regression": "detached"},
)
