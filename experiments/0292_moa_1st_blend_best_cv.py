"""MoA 1st place, the best-CV blend: the winning blend's six models with weights fitted on their out-of-fold
predictions (SLSQP on the mean column-wise log loss, >= 0, summing to 1), as the winners searched theirs. Their
best-CV blend was 0.37 / 0.08 / 0.17 / 0.11 / 0.27 (3-stage, 2-heads, EffNet, ResNeSt v1, ResNeSt v2): it won on
CV, not on the private LB, so 0291 keeps the hand-set weights. Pending: moved into experiments/ once its members
exist. The members must share the rows they predict out-of-fold (all trained on data/moa, every fold)."""
from molremote.experiments import blend

EXPERIMENT = blend(
    members=[
        # "auto": weights fitted on OOF; no prior share for any model, the metric decides
        {"experiment": 203, "weight": "auto"},  # 3-stage NN (stage 3)
        {"experiment": 200, "weight": "auto"},  # simple NN
        {"experiment": 210, "weight": "auto"},  # TabNet
        {"experiment": 220, "weight": "auto"},  # 2-heads ResNet
        {"experiment": 230, "weight": "auto"},  # DeepInsight EfficientNet-B3
        {"experiment": 231, "weight": "auto"},  # DeepInsight ResNeSt
    ],
    description="MoA 1st place best-CV blend: the six models, weights fitted on out-of-fold predictions",
    tags=["moa", "1st-place", "blend", "best-cv"],
)
