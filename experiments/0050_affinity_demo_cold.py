"""Experiment 5 on the KIBA sample's own split: fold 0 = its 1,000 validation pairs, whose 23 proteins and 191
ligands never occur in training. With 143 training proteins a character CNN cannot generalise to unseen
proteins, so retrieval and regression stay near the random / mean-predictor baselines (README): the case
for pretrained protein embeddings (experiments 4xx, ESM-2)."""
from molremote.experiments import derive

EXPERIMENT = derive(
    5,
    description="affinity CLIP demo on unseen proteins and ligands (the sample's validation split)",
    folds={"scheme": "official"},  # fold 0 = rows with split == "val"
)
