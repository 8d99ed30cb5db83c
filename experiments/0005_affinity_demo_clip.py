"""Affinity CLIP on the shipped demo data (the KIBA sample of `pydebiaseddta`: a pool of 4,000 training pairs,
166 proteins, 289 ligands; 1,000 test pairs of unseen proteins and ligands): protein and ligand cnn1d towers on
characters, symmetric InfoNCE with false negatives masked, a regression head trained jointly. Random-pair
folds (seen proteins and ligands: what 166 proteins can teach); experiment 50 is the same model on the
sample's own unseen-protein/ligand split. CPU: 1-2 minutes for `molremote train -e 5` (README table)."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="affinity CLIP demo: cnn1d protein + cnn1d SMILES towers, InfoNCE + joint KIBA regression",
    tags=["affinity", "demo"],
    task={"name": "affinity", "affinity_column": "kiba_score",
          "affinity_unit": "score",  # KIBA scores: higher = stronger binding, not a pK
          "protein_max_length": 400,  # KIBA kinases: median ~600 residues; conv cost grows with length
          "smiles_max_length": 100},  # 99% of the demo SMILES are shorter
    model={"name": "clip_pl", "protein": "cnn1d", "ligand": "cnn1d",
           # BELKA's starter cnn1d, narrowed: 3 convs k=3, global max pool, one hidden layer
           "protein_params": {"embed_dim": 16, "channels": [16, 32, 48], "hidden": [128]},
           "ligand_params": {"embed_dim": 16, "channels": [32, 48, 64], "hidden": [128]},
           "tower_dim": 128, "embed_dim": 64, "proj_hidden": 128,
           "regression": "joint", "regression_weight": 1.0},  # the reference's optional pK head, trained jointly
    training={"epochs": 8, "batch_size": 256,  # 12 steps per epoch on the 3,200 training pairs of a fold;
              # a batch of 256 holds ~100 of the 143 training proteins, each encoded once per step
              "lr": 1e-3, "optimizer": "adamw", "weight_decay": 1e-2, "device": "cpu",
              "threads": 1},  # small convs: 2 threads on a busy 2-core CPU ran 5x slower (spin waits)
    folds={"n_folds": 5, "scheme": "random", "run": [0]},  # random pairs: 800 validation pairs per fold
)
