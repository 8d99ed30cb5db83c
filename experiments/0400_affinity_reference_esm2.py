"""Affinity CLIP reference configuration on the real corpus (ORNL winter classic, seed write-up 002): frozen
ESM-2 650M protein embeddings (the write-up's wished-for protein features, computed once by the core
embedding cache) + projection, SMILES transformer tower, symmetric InfoNCE with a learnable temperature.

Data: the public binding-affinity corpus of that line of work (BindingDB + PDBbind + MOAD + BioLIP, ~1.9M pairs,
pK in `neg_log10_affinity_M`), `huggingface-cli download jglaser/binding_affinity --repo-type dataset
--local-dir data/affinity`. Without it the run stops with exit 3 and says this."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="affinity CLIP reference: frozen ESM-2 650M + SMILES transformer, InfoNCE, real corpus",
    tags=["affinity", "reference", "esm2"],
    task={"name": "affinity", "train_file": "data/all.parquet",  # the corpus' full pair table
          "test_file": None,  # no official test split: held-out folds only
          "affinity_column": "neg_log10_affinity_M", "affinity_unit": "pK",
          "smiles_max_length": 160,  # canonical SMILES of drug-like ligands: >99% shorter
          "invalid": "drop"},  # BindingDB carries some unparsable SMILES / odd residues: counted, dropped
    model={"name": "clip_pl", "protein": "cached",
           "protein_embedding": "facebook/esm2_t33_650M_UR50D",  # ESM-2 650M, 1280-d mean-pooled
           "protein_policy": "headtail",  # sequences over ESM's 1,022 residues: head + tail kept
           "ligand": "transformer",
           "ligand_params": {"d_model": 256, "n_layers": 6, "n_heads": 8},  # a BELKA-sized SMILES encoder
           "tower_dim": 512, "embed_dim": 256, "proj_hidden": 1024,
           "temperature": 0.07, "learn_temperature": True},  # CLIP's start value, learned
    training={"epochs": 20, "batch_size": 256,  # the write-up tuned batch size: 400 varies it (derive --grid)
              "lr": 1e-4,  # AdamW on a from-scratch SMILES transformer + projection heads
              "optimizer": "adamw", "weight_decay": 1e-2, "scheduler": "cosine", "warmup_steps": 1000,
              "amp": "bf16", "checkpoint_every_s": 600},  # 10 min: at most that lost per one-hour session
    folds={"n_folds": 5, "scheme": "protein", "run": [0]},  # unseen proteins: the hard, honest split
    data={"root": "data/affinity"},
)
