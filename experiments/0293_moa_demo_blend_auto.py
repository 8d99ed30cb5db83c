"""MoA demo blend with fitted weights: experiments 3 and 38, weights found on their out-of-fold predictions
(SLSQP on the mean column-wise log loss, >= 0, summing to 1), as the MoA winners picked their best-CV blend.
Shipped with the demo (it trains nothing: it blends the demo members 3 and 38)."""
from molremote.experiments import blend

EXPERIMENT = blend(
    members=[{"experiment": 3, "weight": "auto"}, {"experiment": 38, "weight": "auto"}],
    description="MoA demo blend: exp 3 + exp 38, weights fitted on OOF",
    tags=["moa", "demo", "blend"],
)
