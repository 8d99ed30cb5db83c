"""MoA demo, stage 1 of the 1st place's 3-stage NN: experiment 3's weight-norm MLP learning the NON-scored targets
(the demo's 11 louvain clusters; 332 non-empty columns in MoA). Its out-of-fold and test predictions are stage
2's extra features (experiment 31, `data.stack`), so every fold is trained: stage 2's training rows need each
row's prediction from the stage-1 run that validated it. CPU: `molremote train -e 30 --all-folds`."""
from molremote.experiments import derive

EXPERIMENT = derive(
    3,  # the demo MLP, its features and schedule (see experiment 3 for the why of each value)
    description="MoA demo stack, stage 1: MLP on the non-scored targets (feeds 31)",
    tags=["moa", "demo", "stack"],
    # stage 1 learns the non-scored MoAs (all-zero columns dropped, as the winners); the winners clipped these
    # targets to [0.0005, 0.9995], which exp 3's smoothing 0.001 reproduces exactly
    task={"targets": "nonscored"},
    # every fold (exp 3 runs fold 0 only): stage 2 needs out-of-fold predictions for all its training rows.
    # Folds always stratify on the scored targets, so stage 2 gets the same split (checked when 31 trains)
    folds={"run": None},
    # one thread: a 256-wide MLP on 64-row batches gains nothing from a second one, and five folds on a busy
    # 2-core machine crawl when their threads contend (measured: ~40 vs ~1,500 samples/s at load 15)
    training={"threads": 1},
)
