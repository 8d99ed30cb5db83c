"""A second MoA demo member for the demo blends (0039, 0293): experiment 3 with another seed and a wider hidden
layer, so the two members make different errors (a blend of two identical models would gain nothing)."""
from molremote.experiments import derive

EXPERIMENT = derive(
    3,
    description="MoA demo MLP, second blend member: seed 1513, hidden 512",
    tags=["moa", "demo", "blend-member"],
    # the simple NN's six seeds were averaged the same way; 1513 is the second of them
    training={"seed": 1513},
    # 512 units instead of exp 3's 256: still small for ~400 rows with exp 3's dropout, and a different fit
    model={"hidden": 512},
)
