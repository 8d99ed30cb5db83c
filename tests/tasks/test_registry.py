"""The registry is the only place that names a task: no code outside molremote/tasks/ (and the models' own
files) compares with, looks up or imports a task by name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import molremote
from molremote.errors import ExperimentError, UsageError
from molremote.tasks import TASKS, all_task_results, data_preparer, task_results

PKG = Path(molremote.__file__).parent


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def test_no_task_name_outside_tasks_and_models():
    hits = []
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG).as_posix()
        if rel.startswith(("tasks/", "models/")):
            continue
        if rel.startswith("templates/"):  # rendered text, not importable Python: look for quoted task names
            hits += [f"{rel}: {n!r}" for n in TASKS if f"'{n}'" in p.read_text() or f'"{n}"' in p.read_text()]
            continue
        tree = ast.parse(p.read_text())
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
                and node.value in TASKS
            ):
                hits.append(f"{rel}:{node.lineno}: {node.value!r}")
            if isinstance(node, ast.ImportFrom) and node.module and any(f"tasks.{n}" in node.module for n in TASKS):
                hits.append(f"{rel}:{node.lineno}: from {node.module} import ...")
    assert hits == []


def test_every_task_has_a_consistent_results_side():
    # tasks registered by other tests at run time (tests/training/toy.py) may have no results side
    shipped = {n for n, e in TASKS.items() if e.impl.startswith("molremote.")}
    assert shipped >= {"belka", "moa", "text2mol"} and all(getattr(TASKS[n], "results", "") for n in shipped)
    for name in shipped:
        info = task_results(name)
        task_cls = TASKS[name].load()
        assert info.name == task_cls.name == name
        assert info.metric_name == task_cls.metric_name and info.greater_is_better == task_cls.greater_is_better
        assert info.submission_spec().id_col
    assert sorted(i.name for i in all_task_results()) == sorted(
        n for n, e in TASKS.items() if getattr(e, "results", "")
    )
    with pytest.raises(ExperimentError, match=r"unknown task 'nope' \(known: ") as e:
        task_results("nope")
    assert all(f" {n}," in str(e.value) or f" {n})" in str(e.value) for n in shipped), str(e.value)
    with pytest.raises(UsageError, match=r"task 'text2mol' has no data preparation step \(tasks with one: belka\)"):
        data_preparer("text2mol")
