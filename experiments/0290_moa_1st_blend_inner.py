"""MoA 1st place, the inner blend of the winning submission: 0.37 x 3-stage NN + 0.10 x simple NN + 0.18 x
DeepInsight EfficientNet-B3 + 0.15 x DeepInsight ResNeSt (the write-up's bracket; its weights sum to 0.80).
A blend is a weighted MEAN (weights scaled to sum 1), so this experiment is the bracket divided by 0.80; the
outer blend (0291) gives it 0.9 x 0.80 = 0.72 to rebuild the write-up's formula exactly.
Pending: the coordinator moves it into experiments/ once 0200, 0203, 0230 and 0231 exist."""
from molremote.experiments import blend

EXPERIMENT = blend(
    members=[
        {"experiment": 203, "weight": 0.37},  # 3-stage NN (stage 3): the best single model, the largest share
        {"experiment": 200, "weight": 0.10},  # simple NN (weight-norm MLP, drug folds)
        {"experiment": 230, "weight": 0.18},  # DeepInsight EfficientNet-B3: a CNN, errors unlike the MLPs'
        {"experiment": 231, "weight": 0.15},  # DeepInsight ResNeSt (the write-up's "ResNeSt v2")
    ],
    description="MoA 1st place inner blend: 3-stage NN, simple NN, EffNet-B3, ResNeSt (0.37/0.10/0.18/0.15)",
    tags=["moa", "1st-place", "blend"],
)
