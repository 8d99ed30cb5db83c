"""MoA 1st place, the winning submission: a blend of blends,
    (0.37 x 3-stage + 0.10 x simple NN + 0.18 x EffNet + 0.15 x ResNeSt) x 0.9 + 0.10 x TabNet + 0.09 x simple NN
    + 0.09 x 2-heads ResNet.
Blends are weighted means: the inner bracket is experiment 0290 (itself scaled to sum 1, i.e. the bracket / 0.80),
so its weight here is 0.9 x 0.80 = 0.72, and the outer weights sum to 0.72 + 0.10 + 0.09 + 0.09 = 1.00: the
leaf weights are exactly the write-up's (3-stage 0.333, simple NN 0.09 + 0.09 = 0.18, EffNet 0.162, ResNeSt
0.135, TabNet 0.10, 2-heads 0.09). Pending: moved into experiments/ once its members exist."""
from molremote.experiments import blend

EXPERIMENT = blend(
    members=[
        {"experiment": 290, "weight": 0.72},  # the inner bracket x 0.9; 0.72 = 0.9 x its weight sum 0.80
        {"experiment": 210, "weight": 0.10},  # TabNet: a different inductive bias, so a share of its own
        {"experiment": 200, "weight": 0.09},  # simple NN once more, outside the bracket (as the winners did)
        {"experiment": 220, "weight": 0.09},  # 2-heads ResNet (non-scored pre-training)
    ],
    description="MoA 1st place winning blend: 0.9 x inner blend (0290) + 0.10 TabNet + 0.09 simple NN + 0.09 2-heads",
    tags=["moa", "1st-place", "blend", "winning"],
)
