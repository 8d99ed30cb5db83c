"""Experiment 400 with unseen ligand chemotypes (Bemis-Murcko scaffold folds) instead of unseen proteins."""
from molremote.experiments import derive

EXPERIMENT = derive(400, description="affinity CLIP reference, scaffold split", folds={"scheme": "scaffold"})
