"""BELKA 5th place (private 0.28557 as an ensemble), its cnn1d member on the real competition data.

Starter 1D CNN on character tokens: Embedding(39, 128) -> Conv1d 32/64/96 k=3 -> global max pool -> MLP
1024-1024-512 (dropout 0.1) -> 3 logits, BatchNorm eps 5e-3 / momentum 0.2. BCE on the three proteins,
Adam, step LR 1e-3 / 1e-4 / 1e-5, batch 4096, no class rebalancing. The write-up's cnn1d was trained on folds
0, 1 and 3 (~7 h per fold on an A6000).

Data: `kaggle competitions download -c leash-BELKA`, unzip train.parquet and test.parquet into data/belka/
(the first run prepares them once as memory maps), or prepare them beforehand with
`python -m molremote.tasks.belka.prepare RAW_DIR data/belka`."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="BELKA 5th place cnn1d (starter config), real data, folds 0/1/3 of 5",
    tags=["belka", "5th-place", "cnn1d"],
    task={"name": "belka"},  # max_length 142: the longest BELKA SMILES (no BOS/EOS needed by the CNN)
    model={"name": "cnn1d"},  # Cnn1dParams defaults are the write-up's starter net
    training={"epochs": 10, "batch_size": 4096,  # write-up: batches of 2000-5000, 6-12 epochs
              "eval_batch_size": 16384,  # inference only: no activations kept for backward
              "optimizer": "adam", "lr": 1e-3,
              "scheduler": "step", "milestones": [6, 9], "gamma": 0.1,  # 1e-3 x6, 1e-4 x3, 1e-5 x1
              "checkpoint_every_s": 600.0},  # an epoch of 65M molecules takes ~40 min on one GPU
    folds={"n_folds": 5, "scheme": "random", "seed": 0, "run": [0, 1, 3]},  # the write-up's cnn1d folds
    data={"root": "data/belka"},
)
