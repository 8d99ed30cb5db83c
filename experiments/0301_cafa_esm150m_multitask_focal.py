"""CAFA-6, the write-up's recommended model: ESM-2 150M embeddings, multi-task classifier (shared 1024, one
512 head per namespace: 44.6% of proteins carry all three aspects, so the trunk is shared) and focal loss
(alpha 0.25, gamma 2: "+5-10% F1 over BCE" in the write-up)."""
from molremote.experiments import derive

EXPERIMENT = derive(
    300,
    description="CAFA-6: ESM-2 150M, multitask head (shared 1024, 512 per aspect), focal loss",
    tags=["cafa", "esm2-150m", "multitask", "focal"],
    task={"loss": "focal", "focal_alpha": 0.25, "focal_gamma": 2.0},
    model={"name": "protein_multitask", "shared": 1024, "aspect_hidden": 512,
           "dropout": 0.3, "head_dropout": 0.2},  # the write-up's MultiTaskProteinClassifier
)
