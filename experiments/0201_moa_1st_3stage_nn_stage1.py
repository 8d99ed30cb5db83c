"""MoA (Kaggle lish-moa) real data, the 1st place's 3-stage NN, stage 1 (winners' repo
guitarmind/kaggle_moa_winner_hungry_for_gold, final/Best LB/Training/Local/3stage-nn-train.py): the weight-norm
MLP learns the NON-scored targets (the 332 columns with a positive row); its out-of-fold and test predictions
feed stage 2 (experiment 202). Every fold and seed is needed: `molremote train -e 201 --all-folds`.
Refuses with exit 3 and the download command when data/moa is absent."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="MoA 1st place 3-stage NN, stage 1: MLP h=2048 on the non-scored targets",
    tags=["moa", "1st-place", "3-stage", "stack"],
    task={"name": "moa",
          "targets": "nonscored",  # stage 1: train_targets_nonscored, all-zero columns dropped (402 -> 332)
          "quantile": True, "n_quantiles": 100,  # QuantileTransformer(100, normal) on every g-/c- column
          "fa_genes": 90, "umap_genes": 45,  # genes: FactorAnalysis 90 + UMAP 45 components appended
          "fa_cells": 50, "umap_cells": 25,  # cells: FactorAnalysis 50 + UMAP 25
          "fit_on": "train+test",  # the winners fitted FA / UMAP / quantiles on train+test features
          # targets clipped to [0.0005, 0.9995] (PMIN/PMAX): smoothing 0.001 maps 0/1 to exactly those values
          "label_smoothing": 0.001},
    model={"name": "tabular_mlp", "hidden": 2048,  # hidden_size=2048
           "dropout": [0.15, 0.3, 0.25]},  # the three blocks' dropouts
    training={"epochs": 15,  # stage 1: EPOCHS = 15
              "batch_size": 256,  # --batch-size default 256
              "lr": 5e-3, "weight_decay": 1e-5, "optimizer": "adam",  # Adam(lr 5e-3, wd 1e-5)
              # the winners' OneCycleLR(max_lr 1e-2, pct_start 0.2, div_factor 1e3), stepped per batch
              "scheduler": "onecycle", "max_lr": 1e-2, "pct_start": 0.2, "div_factor": 1e3,
              "seeds": [0, 1, 2, 3, 4]},  # NSEEDS = 5: SEED = range(5), averaged within each fold
    # NFOLDS = 5 MultilabelStratifiedKFold. The winners split stage 1 on the non-scored targets and stage 2 on
    # the scored ones (so stage-1 "OOF" was not out-of-fold for stage 2); here every stage shares one split on
    # the scored targets, which stacking checks
    folds={"n_folds": 5, "scheme": "mskf", "seed": 0},
    data={"root": "data/moa"},
)
