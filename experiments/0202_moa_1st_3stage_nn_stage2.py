"""MoA real data, the 1st place's 3-stage NN, stage 2: the scored targets from the stage-1 features plus stage 1's
(experiment 201) predictions of the 332 non-scored targets, each quantile-transformed (the winners' per-column
QuantileTransformer(100, normal) on the predictions), stacked out-of-fold. Its predictions feed stage 3
(experiment 203). Refuses with exit 3 and the download command when data/moa is absent."""
from molremote.experiments import derive

EXPERIMENT = derive(
    201,
    description="MoA 1st place 3-stage NN, stage 2: MLP h=2048 on features + stage-1 predictions",
    task={"targets": "scored",  # stage 2 learns the 206 scored targets
          "stack_quantile": True,  # stage-1 predictions quantile-transformed per column before use
          "label_smoothing": 0.0},  # stage 2 trained on the raw 0/1 scored targets (no PMIN/PMAX clip)
    training={"epochs": 25},  # stage 2: EPOCHS = 25 (hidden 2048, Adam, batch 256 as stage 1)
    data={"stack": [{"experiment": 201,  # stage 1's non-scored predictions
                     "use": "oof+test"}]},  # OOF for training/validation rows, fold mean for test rows
)
