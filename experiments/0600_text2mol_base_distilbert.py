"""ALTEGRAD text2mol on the real ChEBI-20 challenge data (put it in data/text2mol, see the task's data_help):
the write-up's baseline, Base GCN (3 GCNConv layers, mean pool, MLP) + trainable DistilBERT (CLS token),
contrastive cross-entropy both ways. Fold 0 of the "official" scheme validates on val.tsv."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="text2mol: Base GCN (3 layers) + trainable distilbert-base-uncased, contrastive loss",
    tags=["text2mol", "altegrad", "base-gcn"],
    task={"name": "text2mol", "loss": "contrastive", "text_max_length": 256},
    model={"name": "gcn_text", "num_layers": 3, "hidden": 300, "head_hidden": 300,  # ALTEGRAD baseline widths
           "embed_dim": 768,  # the baseline's nout (DistilBERT's hidden size)
           "text_model": "distilbert-base-uncased", "freeze_text": False, "pooling": "cls"},
    training={"epochs": 100, "batch_size": 128,  # write-up exp. 68: batch 128 was the best baseline (0.68)
              "lr": 7e-5,  # "very sensitive to the learning rate": 7e-5 found best for the baseline
              "optimizer": "adam", "weight_decay": 1e-2,
              "scheduler": "plateau", "plateau_patience": 8, "gamma": 0.8,  # write-up A.3 plateau settings
              "amp": "bf16", "checkpoint_every_s": 600},
    folds={"n_folds": 5, "scheme": "official", "run": [0]},  # fold 0 = the challenge's val.tsv
    data={"root": "data/text2mol"},
)
