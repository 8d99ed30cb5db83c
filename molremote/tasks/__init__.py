"""The task registry: the ONLY place that names tasks. A task is one package `tasks/<name>/` (see base.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..registry import Entry, import_string

if TYPE_CHECKING:  # pragma: no cover
    from ..experiments import Experiment
    from .base import Task, TaskResults


@dataclass(frozen=True)
class TaskEntry(Entry):
    results: str = ""  # "module:Class" of the task's torch-free TaskResults
    # "module:function" behind `molremote data prepare --task NAME` ("" when raw files are read as is)
    prepare: str = ""

    def results_class(self) -> type[TaskResults]:
        return import_string(self.results)


TASKS: dict[str, TaskEntry] = {
    "belka": TaskEntry(
        "molremote.tasks.belka.params:BelkaParams",
        "molremote.tasks.belka.task:BelkaTask",
        "molremote.tasks.belka.results:BelkaResults",
        "molremote.tasks.belka.prepare:prepare_command",
    ),
    "text2mol": TaskEntry(
        "molremote.tasks.text2mol.params:Text2MolParams",
        "molremote.tasks.text2mol.task:Text2MolTask",
        "molremote.tasks.text2mol.results:Text2MolResults",
    ),
    "moa": TaskEntry(
        "molremote.tasks.moa.params:MoaParams",
        "molremote.tasks.moa.task:MoaTask",
        "molremote.tasks.moa.results:MoaResults",
    ),
    "affinity": TaskEntry(
        "molremote.tasks.affinity.params:AffinityParams",
        "molremote.tasks.affinity.task:AffinityTask",
        "molremote.tasks.affinity.results:AffinityResults",
    ),
    "cafa": TaskEntry(
        "molremote.tasks.cafa.params:CafaParams",
        "molremote.tasks.cafa.task:CafaTask",
        "molremote.tasks.cafa.results:CafaResults",
    ),
}


def get_task(exp: Experiment) -> Task:
    cls = TASKS[exp.task.name].load()
    return cls(exp)


def task_results(name: str | None) -> TaskResults:
    """The torch-free side of task `name`; an ExperimentError naming the known tasks when there is none."""
    from ..errors import ExperimentError

    entry = TASKS.get(name or "")
    if entry is None:
        raise ExperimentError(f"unknown task {name!r} (known: {', '.join(sorted(TASKS))})")
    if not getattr(entry, "results", ""):
        raise ExperimentError(
            f"task {name!r} has no results side registered (TaskEntry.results): it cannot be evaluated or ensembled",
            field="task.name",
        )
    return entry.results_class()()


def all_task_results() -> list[TaskResults]:
    """The results side of every registered task that has one (for recognising a submission file)."""
    return [task_results(n) for n, e in TASKS.items() if getattr(e, "results", "")]


def data_preparer(name: str) -> Any:
    """The function behind `molremote data prepare --task NAME`; a DataError naming the tasks that have one."""
    from ..errors import UsageError

    entry = TASKS.get(name)
    if entry is None or not getattr(entry, "prepare", ""):
        have = sorted(n for n, e in TASKS.items() if getattr(e, "prepare", ""))
        raise UsageError(
            f"--task {name}: task {name!r} has no data preparation step (tasks with one: {', '.join(have) or 'none'}); "
            "other tasks read their raw files directly"
        )
    return import_string(entry.prepare)
