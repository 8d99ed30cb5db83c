"""MoA demo, stage 1 of the 1st place's 3-stage NN: the weight-norm MLP learns the NON-scored targets (the demo's
11 louvain clusters; 332 non-empty columns in MoA). Its out-of-fold and test predictions are stage 2's extra
features (experiment 31, `data.stack`), so every fold is trained: stage 2's training rows need each row's
prediction from the stage-1 run that validated it. CPU: `molremote train -e 30 --all-folds`, seconds per fold."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="MoA demo stack, stage 1: MLP on the non-scored targets (feeds 31)",
    tags=["moa", "demo", "stack"],
    task={"name": "moa",
          "targets": "nonscored",  # stage 1 learns the non-scored MoAs (all-zero columns dropped, as the winners)
          "quantile": True, "n_quantiles": 100,  # the winners' QuantileTransformer (normal output)
          "pca_genes": 20, "pca_cells": 5,  # exp 3's demo-scale PCA (the winners: FA 90/50 + UMAP 45/25)
          "fit_on": "train+test",  # unsupervised fit on train+test rows, as the winners did
          # stage 1 clipped its targets to [0.0005, 0.9995]: smoothing 0.001 maps 0/1 to exactly those values
          "label_smoothing": 0.001},
    model={"name": "tabular_mlp", "hidden": 128,  # 2048 in MoA; 128 keeps the architecture at ~400 rows
           "dropout": [0.15, 0.3, 0.25]},  # the winners' three block dropouts
    training={"epochs": 8,  # the winners ran 15 on 17k rows; the demo's validation loss flattens by ~8
              "batch_size": 64,  # ~6 steps per epoch on ~400 rows (MoA: 256 on ~17k)
              "lr": 5e-3, "weight_decay": 1e-5,  # the 3-stage NN's Adam settings
              "scheduler": "cosine",  # nearest trainer schedule to the winners' OneCycleLR
              "optimizer": "adam", "device": "cpu",
              "threads": 1},  # a 128-wide MLP on 64-row batches: thread hand-offs cost more than they give
    # the same folds as stage 2 (checked when 31 trains); every fold, for true out-of-fold features
    folds={"n_folds": 5, "scheme": "drug", "seed": 0},
)
