"""Affinity CLIP on the shipped demo data (the KIBA sample of `pydebiaseddta`: 4,000 training pairs, 166
proteins, 289 ligands; the sample's validation pairs, whose 23 proteins and 191 ligands are all unseen in
training, are fold 0): protein and ligand cnn1d towers on characters, symmetric InfoNCE with false negatives
masked, a regression head trained jointly. CPU: about a minute for `molremote train -e 5` (README table)."""
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
    training={"epochs": 8, "batch_size": 256,  # 12 steps per epoch on the 3,000 training pairs of fold 0;
              # a batch of 256 holds ~100 of the 143 training proteins, each encoded once per step
              "lr": 1e-3, "optimizer": "adamw", "weight_decay": 1e-2, "device": "cpu",
              "threads": 1},  # small convs: 2 threads on a busy 2-core CPU ran 5x slower (spin waits)
    folds={"n_folds": 5, "scheme": "official", "run": [0]},  # fold 0 = the sample's unseen-protein/ligand pairs
)
