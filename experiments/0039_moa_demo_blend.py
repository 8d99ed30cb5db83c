"""MoA demo blend: experiments 3 and 38 with fixed weights (`molremote evaluate -e 39`: the blended OOF score
and submission; `--submit` sends it like any experiment). The auto-weighted twin is experiment 293."""
from molremote.experiments import blend

EXPERIMENT = blend(
    members=[
        # exp 3 is the stronger member on the demo folds (its heavier dropout suits ~400 training rows):
        # it gets the larger share, as the winners gave their best single model the largest weight
        {"experiment": 3, "weight": 0.6},
        {"experiment": 38, "weight": 0.4},
    ],
    description="MoA demo blend: 0.6 x exp 3 + 0.4 x exp 38 (fixed weights)",
    tags=["moa", "demo", "blend"],
)
