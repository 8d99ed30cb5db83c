"""MoA (Kaggle lish-moa) on the real data in data/moa: the 1st place DeepInsight EfficientNet-B3 Noisy Student
(`final/Best LB/Training/deepinsight-efficientnet-lightning-v7-b3-train.ipynb`): raw g-/c- features with norm-2
log scaling, a 300x300 t-SNE feature map (cosine, perplexity 5, exact) with the convex-hull rotation, mean /
min / max channels, swap noise, geffnet's tf_efficientnet_b3_ns with an FC 512 + ELU head. Needs the optional
backbone package (`pip install --no-deps geffnet==1.0.2`) and a GPU (12-25 h for 10 folds on two 2080 Ti).
Refuses with exit 3 and the download command when data/moa is absent."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="MoA 1st place DeepInsight EfficientNet-B3 NS on 300x300 t-SNE feature maps",
    tags=["moa", "1st-place", "deepinsight", "cnn", "gpu"],
    task={"name": "moa",
          "quantile": False, "log_scale": True,  # raw features, LogScaler (norm-2) only
          "deepinsight_pixels": 300,  # resolution = image size = 300 for B3
          "deepinsight_perplexity": 5.0, "deepinsight_method": "exact",  # TSNE(metric="cosine", perplexity=5)
          "fit_on": "train+test",  # the scaler and the map fitted on train+test features, as theirs
          "label_smoothing": 0.001},  # label_smoothing = 0.001
    model={"name": "deepinsight", "backbone": "efficientnet_b3",
           "pretrained": True,  # ImageNet Noisy Student weights (downloaded by geffnet on first use)
           "fc_hidden": 512, "dropout": 0.0,  # the replaced classifier: FC 512 + ELU
           "swap_prob": 0.1, "swap_portion": 0.15},  # swap_prob = 0.1, swap_portion = 0.15
    training={"epochs": 35,  # "about 35 epochs" (max 200, early-stopped)
              "early_stopping_patience": 12,  # patience = 12
              "batch_size": 48,  # 48 for B3 at 300 px
              "optimizer": "adam",  # RAdam (theirs) is not a trainer optimizer; Adam is the nearest
              "lr": 3.52e-4,  # from their LR finder
              "weight_decay": 0.0,
              "scheduler": "cosine",  # CosineAnnealingLR(T_max=5 epochs); one cosine over the run here
              "grad_clip": 10.0,  # gradient_clip_val = 10
              "amp": "fp16"},  # they trained in 16-bit precision
    folds={"n_folds": 10, "scheme": "mskf", "seed": 0},  # 10 MSKF folds, one seed
    data={"root": "data/moa"},
)
