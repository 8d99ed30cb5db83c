"""MoA demo, stage 2 of the 1st place's 3-stage NN: experiment 3 (scored targets, same features, folds and
schedule) plus stage 1's (experiment 30) 11 predictions of the non-scored targets as extra features, stacked
out-of-fold: each training row's stage-1 features come from the stage-1 run that did not train on it, test rows
get stage 1's fold average (molremote/stacking.py). Its score against experiment 3's is the stack's gain.
Train 30 first: `molremote train -e 30 --all-folds && molremote train -e 31`."""
from molremote.experiments import derive

EXPERIMENT = derive(
    3,  # the demo MLP on the scored targets (fold 0, drug-aware folds: the same folds as experiment 30)
    description="MoA demo stack, stage 2: exp 3 + stage-1 (exp 30) predictions as features",
    tags=["moa", "demo", "stack"],
    # the winners quantile-transformed each stage-1 prediction (QuantileTransformer(100, normal)) before stage 2
    task={"stack_quantile": True},
    data={"stack": [{"experiment": 30,  # stage 1's non-scored predictions
                     "use": "oof+test"}]},  # OOF for training/validation rows, fold mean for test rows
    training={"threads": 1},  # as stage 1 (exp 3 runs 2 threads: float sums may differ in the last bits)
)
