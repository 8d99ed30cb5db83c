"""MoA demo, stage 2 of the 1st place's 3-stage NN: the scored targets, from the features plus stage 1's
(experiment 30) predictions of the non-scored targets, stacked out-of-fold: each training row's stage-1
features come from the stage-1 run that did not train on it, test rows get stage 1's fold average
(molremote/stacking.py). Train 30 first: `molremote train -e 30 --all-folds && molremote train -e 31`."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="MoA demo stack, stage 2: MLP on the scored targets + stage-1 predictions",
    tags=["moa", "demo", "stack"],
    task={"name": "moa",
          "quantile": True, "n_quantiles": 100,  # as stage 1: the winners' QuantileTransformer
          "pca_genes": 20, "pca_cells": 5,  # as stage 1 (demo-scale PCA)
          "fit_on": "train+test",  # as the winners
          "stack_quantile": True,  # stage-1 predictions quantile-transformed per column, as the winners
          "label_smoothing": 0.001},  # the winners' smoothed BCE on the scored targets
    model={"name": "tabular_mlp", "hidden": 128,  # stage 2 kept stage 1's width (2048 in MoA)
           "dropout": [0.15, 0.3, 0.25]},
    training={"epochs": 10,  # the winners: 25 on 17k rows; the demo flattens by ~10
              "batch_size": 64, "lr": 5e-3, "weight_decay": 1e-5, "optimizer": "adam",
              "scheduler": "cosine", "device": "cpu", "threads": 1},
    # stacked predictions are only out-of-fold for the same folds: these must equal experiment 30's
    folds={"n_folds": 5, "scheme": "drug", "seed": 0, "run": [0]},
    data={"stack": [{"experiment": 30,  # stage 1's non-scored predictions as extra features
                     "use": "oof+test"}]},  # OOF for training/validation rows, fold-averaged for test rows
)
