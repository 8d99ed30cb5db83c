"""MoA demo blend: experiments 3 and 38 with fixed weights (`molremote evaluate -e 39`: the blended out-of-fold
score and submission; `--submit` sends it like any experiment). The auto-weighted twin is experiment 293.
Measured (full demo training, fold 0, 89 validation rows): exp 3 0.1418, exp 38 0.1433, this blend 0.1399,
the fitted blend (0293: 0.60 / 0.40) 0.1398 mean column-wise log loss (exp 3 and 38 on OneCycleLR)."""
from molremote.experiments import blend

EXPERIMENT = blend(
    members=[
        # equal shares: two members of the same architecture and features, neither known better beforehand
        # (on ~90 validation rows their scores differ by less than one fold's noise)
        {"experiment": 3, "weight": 0.5},
        {"experiment": 38, "weight": 0.5},
    ],
    description="MoA demo blend: 0.5 x exp 3 + 0.5 x exp 38 (fixed weights)",
    tags=["moa", "demo", "blend"],
)
