"""MoA on the shipped demo data: TabNet (pytorch-tabnet's network inside molremote's trainer) with the 1st-place
2-stage NN+TabNet's architecture (n_d = n_a = 32, one step, entmax), scaled to ~400 training rows.
CPU: seconds for `molremote train -e 33`; 0210 is the real-data version."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="MoA demo: TabNet (n_d=n_a=32, 1 step, entmax) on quantile + PCA features",
    tags=["moa", "demo", "tabnet"],
    task={"name": "moa",
          "quantile": True, "n_quantiles": 100,  # QuantileTransformer (normal output), as for every winner model
          "pca_genes": 20, "pca_cells": 5,  # 150 g- / 20 c- columns here (MoA 772 / 100): PCA scaled down
          "fit_on": "train+test",  # unsupervised fit on train+test rows, as the winners did
          "label_smoothing": 0.001},  # the winners' TabNet loss: smoothed BCE with logits
    model={"name": "tabnet", "n_d": 32, "n_a": 32, "n_steps": 1,  # the winners' TabNetRegressor
           "gamma": 1.3, "mask_type": "entmax",  # gamma: pytorch-tabnet's default, which the winners' code kept
           "virtual_batch_size": 32},  # 128 inside batches of 1024 on 17k rows; 32 inside 128 here
    training={"epochs": 40,  # TabNet learns slowly from its sparse masks; 200 with patience 50 on the real data
              "batch_size": 128,  # ~3 steps per epoch on ~400 rows (winners: 1024 on ~17k)
              # the winners' Adam(2e-2, wd 1e-5); 2e-2 swings the validation loss by 0.1 between epochs at
              # 3 steps per epoch here (measured), 1e-2 descends steadily
              "lr": 1e-2, "weight_decay": 1e-5, "optimizer": "adam",
              # the winners' MultiStepLR([100, 150], 0.9) never fires in 40 epochs: no schedule
              "scheduler": "none", "device": "cpu",
              "threads": 1}, # small layers: 1 thread is faster than 2 (thread hand-offs dominate)
    folds={"n_folds": 5, "scheme": "drug", "run": [0]},  # the winners' drug-aware folds
)
