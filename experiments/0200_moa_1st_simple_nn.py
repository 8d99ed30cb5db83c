"""MoA (Kaggle lish-moa) on the real competition data in data/moa: the 1st-place "simple NN" config
(weight-norm 3-block MLP, hidden 2048, smoothed BCE 0.001, 25 epochs, Adam 5e-3 / wd 1e-5, batch 256) on
quantile-transformed features with PCA components, drug-aware MSKF folds. Refuses with exit 3 and the download
command when data/moa is absent."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="MoA 1st place simple NN: weight-norm 3-block MLP h=2048, drug-aware folds",
    tags=["moa", "1st-place", "mlp"],
    task={"name": "moa",
          "quantile": True, "n_quantiles": 100,  # 3-stage NN: QuantileTransformer(100, normal)
          "pca_genes": 50, "pca_cells": 15,  # the 2-stage NN's PCA sizes
          "variance_threshold": 0.5,  # the 2-stage NN's VarianceThreshold
          "fit_on": "train+test",  # the winners fitted the unsupervised transforms on train+test
          "drug_threshold": 18,  # drugs with <= 18 rows stratified as whole drugs
          "label_smoothing": 0.001},  # simple NN's SmoothBCEwLogits(0.001)
    model={"name": "tabular_mlp", "hidden": 2048,  # simple NN / stage 1-2 width
           "dropout": [0.15, 0.3, 0.25]},  # the three blocks' dropouts in the winners' code
    training={"epochs": 25, "batch_size": 256,  # simple NN: 25 epochs, batch 256
              "lr": 5e-3, "weight_decay": 1e-5, "optimizer": "adam",  # Adam 5e-3, wd 1e-5
              # the winners' OneCycleLR(max_lr 1e-2, pct_start 0.2, div_factor 1e3), stepped per batch
              "scheduler": "onecycle", "max_lr": 1e-2, "pct_start": 0.2, "div_factor": 1e3},
    folds={"n_folds": 5, "scheme": "drug", "seed": 0},  # 5 folds, the winners' drug-aware scheme
    data={"root": "data/moa"},
)
