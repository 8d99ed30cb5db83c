"""MoA on the shipped demo data: the 1st place DeepInsight CNN idea at a demo's scale. Raw g-/c- features with
DeepInsight's norm-2 log scaling, mapped to a 24x24 image by t-SNE over the features (cosine, perplexity 5,
exact) with the convex-hull rotation, mean/min/max channels, swap noise, and a small pure-torch CNN instead of
EfficientNet-B3 / ResNeSt (0230 / 0231 are the real-data versions). CPU: seconds for `molremote train -e 35`."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="MoA demo: DeepInsight small CNN on a 24x24 t-SNE feature map (mean/min/max channels)",
    tags=["moa", "demo", "deepinsight", "cnn"],
    task={"name": "moa",
          "quantile": False, "log_scale": True,  # the winners' CNNs: raw features, norm-2 log scaling only
          "deepinsight_pixels": 24,  # 172 features on 576 pixels (MoA: 875 on 300x300 / 224x224)
          "deepinsight_perplexity": 5.0, "deepinsight_method": "exact",  # the winners' t-SNE
          "fit_on": "train+test",  # the mapping and scaling see train+test rows, as the winners' did
          "label_smoothing": 0.001},  # the winners' CNN loss: smoothed BCE 0.001
    model={"name": "deepinsight", "backbone": "small",  # pure torch; the big backbones are an optional extra
           "channels": [16, 32, 64],  # three conv blocks: 24 -> 12 -> 6 -> 3 pixels
           "fc_hidden": 128,  # the winners' FC 512 + ELU head, narrowed for ~400 rows
           "swap_prob": 0.1, "swap_portion": 0.15},  # the winners' swap noise
    training={"epochs": 25,  # ~400 rows: validation loss flattens by ~20 epochs
              "batch_size": 64,  # ~6 steps per epoch (winners: 48 / 128 on ~21k rows)
              "optimizer": "adam",  # RAdam (winners) is not a trainer optimizer; Adam is the nearest
              "lr": 3e-3,  # the winners' 3.52e-4 came from an LR finder for a pretrained B3; a fresh CNN needs more
              "weight_decay": 1e-5,
              "scheduler": "cosine",  # the winners' cosine annealing (T_max 5 epochs, restarts); one cosine here
              "grad_clip": 10.0,  # the winners' gradient clipping at 10
              "device": "cpu", "threads": 1},  # the demo target: small convolutions run best on 1 thread
    folds={"n_folds": 5, "scheme": "drug", "run": [0]},  # drug-aware folds, as the other demos
)
