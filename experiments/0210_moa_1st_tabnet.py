"""MoA (Kaggle lish-moa) on the real data in data/moa: the 1st place TabNet (their 2-stage NN+TabNet's second
stage, `final/Best LB/Training/2stagenn-tabnet-train.ipynb`) as pytorch-tabnet's network inside molremote's
trainer. Its stage-1 non-scored meta-features come from stacking (another experiment's predictions); this one
trains TabNet on the engineered features alone. Refuses with exit 3 and the download command when data/moa is
absent."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="MoA 1st place TabNet: n_d=n_a=32, 1 step, entmax, Adam 2e-2, MultiStepLR, 10 MSKF folds",
    tags=["moa", "1st-place", "tabnet"],
    task={"name": "moa",
          "quantile": True, "n_quantiles": 100,  # QuantileTransformer(100, normal) on g- / c- columns
          "pca_genes": 50, "pca_cells": 15,  # the 2-stage model's PCA sizes
          "fa_genes": 90, "fa_cells": 50,  # stage 2 added factor analysis (the 3-stage NN's sizes)
          "variance_threshold": 0.5,  # the 2-stage model's VarianceThreshold(0.5)
          "fit_on": "train+test",  # the winners fitted the unsupervised transforms on train+test
          "label_smoothing": 0.001},  # LabelSmoothing(0.001) as the TabNet loss
    model={"name": "tabnet", "n_d": 32, "n_a": 32,  # TabNetRegressor(n_d=32, n_a=32, ...)
           "n_steps": 1,  # one decision step
           "gamma": 1.3,  # left at pytorch-tabnet's default by the winners (0.9 is their MultiStepLR gamma)
           "mask_type": "entmax",
           "virtual_batch_size": 128},  # ghost batch norm chunks of 128 inside batches of 1024
    training={"epochs": 200,  # max_epochs=200 ...
              "early_stopping_patience": 50,  # ... patience=50 on the validation log loss
              "batch_size": 1024,
              "lr": 2e-2, "weight_decay": 1e-5, "optimizer": "adam",  # optimizer_params=dict(lr=2e-2, wd=1e-5)
              "scheduler": "step", "milestones": [100, 150], "gamma": 0.9},  # MultiStepLR([100, 150], 0.9)
    # lambda_sparse=0 (no sparsity term: models/tabnet.py drops it). cat_idxs [0, 1] with 1-dim embeddings:
    # here cp_time / cp_dose stay numeric columns
    folds={"n_folds": 10, "scheme": "mskf", "seed": 0},  # 10-fold MultilabelStratifiedKFold
    data={"root": "data/moa"},
)
