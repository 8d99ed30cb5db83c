"""MoA (Kaggle lish-moa) on the real data in data/moa: the 1st place 2-heads ResNet (their Keras port,
`final/Best LB/Training/2heads-ResNest-train.ipynb`): pre-trained on the non-scored targets, then the scored
head, then the freeze / unfreeze phases (models/two_heads.py). Their phases were early-stopped (patience 10,
and 3 in the loops); here they are fixed epoch counts, so a resumed run is in the same phase and the trainer keeps
the best epoch by validation score. Refuses with exit 3 and the download command when data/moa is absent."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="MoA 1st place 2-heads ResNet: non-scored pre-training, scored, frozen, unfrozen phases",
    tags=["moa", "1st-place", "two-heads", "resnet"],
    task={"name": "moa",
          "quantile": True, "n_quantiles": 100,  # standardised inputs (winners: StandardScaler)
          "pca_genes": 2, "pca_cells": 100,  # preprocessor_1: PCA(2) on genes, PCA(100) on cells
          "fit_on": "train",  # their scalers and PCA were fitted on the fold's training rows
          "label_smoothing": 0.0005},  # label_smoothing_alpha = 0.0005
    model={"name": "two_heads", "hidden": 512, "narrow": 256,  # Dense(512) / Dense(256) blocks
           "dropout": [0.2, 0.3],  # the input block's and the first residual block's dropouts
           "pretrain_epochs": 25,  # non-scored fit: up to 50 epochs, early-stopped (~20-30 in practice)
           "scored_epochs": 25,  # scored fit: the same
           "frozen_epochs": 5,  # frozen loop: patience 3 on lr 1e-3 / 3
           "frozen_lr_scale": 0.3333333333333333, "unfrozen_lr_scale": 0.2},  # lr 1e-3 / 3, then 1e-3 / 5
    training={"epochs": 60,  # 25 + 25 + 5 + 5 unfrozen
              "batch_size": 128,  # args.batch_size = 128 (the V2 model: 64)
              "lr": 1e-3, "optimizer": "adam",  # Adam(1e-3) (Adadelta in the loops)
              # ReduceLROnPlateau(0.5, patience 4) would act on the pre-training phase's scored loss, which
              # does not move while the scored head waits: no schedule
              "scheduler": "none"},
    folds={"n_folds": 10, "scheme": "kfold", "seed": 0},  # their KFold(10, shuffle) (7 seeds x 10 folds)
    data={"root": "data/moa"},
)
