"""The results pipeline, torch-free: what happens to a run's predictions after training.

    submission_files.py  submission / prediction FILES: format specs, reading, checks, atomic CSV writing
    evaluate.py          one experiment's fold runs -> fold and out-of-fold scores + the fold-averaged submission
    averaging.py         the maths: id-aligned averaging, methods, weight fitting, correlation heatmap, records
    members.py           what `molremote ensemble` averages: experiments (evaluated) and files (`-i`)
    ensemble.py          `molremote ensemble`: members -> weights (given or fitted on OOF) -> submission + record
    kaggle_submit.py     sending a submission to Kaggle with a parseable description; scores joined back

Task-specific knowledge (metric, submission format, ensemble defaults, competition) comes from the task's
torch-free side (`molremote.tasks.task_results(name)`); nothing here names a task.
"""
