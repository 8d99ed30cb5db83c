"""Tasks by name: data reading, folds, metric, submission format, competition."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..registry import Entry

if TYPE_CHECKING:  # pragma: no cover
    from ..experiments import Experiment
    from .base import Task

TASKS: dict[str, Entry] = {
    "belka": Entry("molremote.tasks.belka.params:BelkaParams", "molremote.tasks.belka.task:BelkaTask"),
    "text2mol": Entry("molremote.tasks.text2mol.params:Text2MolParams", "molremote.tasks.text2mol.task:Text2MolTask"),
}


def get_task(exp: "Experiment") -> "Task":
    cls = TASKS[exp.task.name].load()
    return cls(exp)
