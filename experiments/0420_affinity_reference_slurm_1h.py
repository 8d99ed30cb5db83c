"""Experiment 400 as the write-up ran it: SLURM jobs with a one-hour wall time. The job requeues itself at the
limit (USR1 300 s before it -> checkpoint -> exit 75 -> requeue -> exact resume), keeps one W&B run id across
sessions and leaves group-readable run folders, so nobody restarts a job by hand:
`molremote remote -e 420 --slurm`. tests/tasks/affinity/test_slurm_1h.py runs a scaled-down twin."""
from molremote.experiments import derive

EXPERIMENT = derive(
    400,
    description="affinity CLIP reference on SLURM, 1-hour wall time, requeued to the end",
    backend={"slurm": {"time": "01:00:00",  # the cluster's limit the write-up hit
                       "gpus": 1, "cpus": 8, "mem": "64G",  # one GPU; loader threads + the embedding cache
                       "signal_margin_s": 300,  # USR1 5 min early: a checkpoint takes seconds, sync more
                       "max_restarts": 40}},  # 20 epochs of ~1.9M pairs: tens of one-hour sessions
)
