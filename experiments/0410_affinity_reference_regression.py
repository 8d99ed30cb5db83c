"""Experiment 400 with the affinity regression head trained jointly (InfoNCE + MSE on standardised pK), so the
run reports Pearson / Spearman / RMSE / CI of predicted pK next to retrieval."""
from molremote.experiments import derive

EXPERIMENT = derive(
    400,
    description="affinity CLIP reference + joint pK regression head",
    model={"regression": "joint", "regression_weight": 1.0},  # both losses ~1 at the start: equal weights
)
