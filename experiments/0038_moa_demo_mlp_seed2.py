"""A second MoA demo member for the demo blend (0039): experiment 3 with another seed and lighter dropout, so
the two members disagree a little (a blend of two identical models would gain nothing)."""
from molremote.experiments import derive

EXPERIMENT = derive(
    3,
    description="MoA demo MLP, second member: another seed, lighter dropout",
    tags=["moa", "demo", "blend-member"],
    # the simple NN's six seeds were blended the same way; 1513 is the second of them
    training={"seed": 1513},
    # lighter dropout than exp 3 (0.15/0.3/0.25): a less regularised member makes different errors
    model={"dropout": [0.1, 0.2, 0.2]},
)
