"""MoA real data, the 1st place's 3-stage NN, stage 3: the scored targets from stage 2's (experiment 202) 206
predictions alone (meta-features: `train = train[train_targets_scored.columns]` keeps only them), each
quantile-transformed, with a narrower MLP. This stage's predictions are the 3-stage NN's output (0.37 of the
winning blend). Refuses with exit 3 and the download command when data/moa is absent."""
from molremote.experiments import derive

EXPERIMENT = derive(
    202,
    description="MoA 1st place 3-stage NN, stage 3: MLP h=1024 on stage-2 predictions only",
    task={"base_features": False,  # meta-features only: no g-/c- features, FA or UMAP
          "stack_quantile": True,  # the winners' QuantileTransformer(100, normal) on each stage-2 prediction
          "label_smoothing": 0.001},  # stage 3 clipped its targets to [0.0005, 0.9995] again
    model={"hidden": 1024},  # stage 3: hidden_size=1024
    training={"epochs": 25},  # stage 3: EPOCHS = 25
    data={"stack": [{"experiment": 202, "use": "oof+test"}]},  # stage 2's scored predictions
)
