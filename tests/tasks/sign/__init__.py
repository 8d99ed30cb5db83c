"""The worked example of docs/adding-a-task.md: a whole task in one folder, registered by one line.

"sign": points in R^dim, label 1 when x . w > 0 for a fixed hidden w; the model predicts P(label = 1).
Everything about the problem lives here: parameters (params.py), data, folds, batches, loss and files
(task.py), metric, submission format and ensemble defaults (results.py). `register()` is the registry line
(in a shipped task it is one entry of `TASKS` in molremote/tasks/__init__.py); `python -m tests.tasks.sign ...`
is the molremote CLI with it registered.
"""

from __future__ import annotations


def register() -> None:
    from molremote.models import MODELS
    from molremote.registry import Entry
    from molremote.tasks import TASKS, TaskEntry

    # the registry line:
    TASKS["sign"] = TaskEntry(
        "tests.tasks.sign.params:SignParams", "tests.tasks.sign.task:SignTask", "tests.tasks.sign.results:SignResults"
    )
    # a model for it (models are not part of a task; this one is the trainer tests' MLP)
    MODELS.setdefault("toy_mlp", Entry("tests.training.toy:ToyModelParams", "tests.training.toy:build"))
