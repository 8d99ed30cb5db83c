"""Tasks by name: data reading, folds, metric, submission format, competition."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..registry import Entry

if TYPE_CHECKING:  # pragma: no cover
    from ..experiments import Experiment
    from .base import Task

TASKS: dict[str, Entry] = {
    "belka": Entry("molremote.tasks.params:BelkaParams", "molremote.tasks.belka:BelkaTask"),
    "text2mol": Entry("molremote.tasks.params:Text2MolParams", "molremote.tasks.text2mol:Text2MolTask"),
}


def get_task(exp: "Experiment") -> "Task":
    cls = TASKS[exp.task.name].load()
    return cls(exp)
