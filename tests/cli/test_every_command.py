"""Every command `molremote --help` lists is invoked by some test: a command added without a test fails here.

A command counts as invoked when its words appear, in order, as consecutive string arguments of a call that runs
the CLI (subprocess, Typer's runner or a test's `cli`/`molremote` helper), or of a list passed to one
(`cli(project, "train", "-e", "1")`, `runner.invoke(app, ["data", "push", ...])`,
`subprocess.run([..., "molremote", "status", "--json"])`)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def command_paths() -> list[tuple[str, ...]]:
    import typer

    from molremote.cli import app

    def walk(c, pre=()):
        subs = getattr(c, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, (*pre, name))
        else:
            yield pre

    return sorted(walk(typer.main.get_command(app)))


def string_runs(tree: ast.AST) -> set[tuple[str, ...]]:
    """All runs of consecutive string constants among a call's arguments or a list/tuple's elements."""
    runs: set[tuple[str, ...]] = set()

    def add(items: list[ast.expr]) -> None:
        cur: list[str] = []
        for it in items:
            if isinstance(it, ast.Starred) and isinstance(it.value, (ast.List, ast.Tuple)):
                add(list(it.value.elts))
                cur = []
            elif isinstance(it, ast.Constant) and isinstance(it.value, str):
                cur.append(it.value)
                for i in range(len(cur)):
                    runs.add(tuple(cur[i:]))
            else:
                cur = []

    def nested(items: list[ast.expr]) -> None:
        for it in items:
            if isinstance(it, (ast.List, ast.Tuple)):
                add(list(it.elts))
                nested(list(it.elts))

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in INVOKERS:
            add(list(node.args))
            nested(list(node.args))
        elif isinstance(node, ast.Call) and _name(node.func) == "parametrize":  # argument lists of a CLI test
            nested(list(node.args))
        elif isinstance(node, ast.For):  # for cmd in (["ls"], ["show", "1"]): cli(*cmd)
            nested([node.iter])
    return runs


# Functions through which tests run the CLI: subprocess entry points, Typer's runner, the tests' own helpers.
INVOKERS = {"run", "Popen", "check_output", "check_call", "invoke", "cli", "molremote", "popen", "run_cli", "mr"}


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def test_every_cli_command_is_invoked_by_a_test():
    seen: set[tuple[str, ...]] = set()
    me = Path(__file__).resolve()
    for f in TESTS.rglob("*.py"):
        if f.resolve() != me:
            seen |= string_runs(ast.parse(f.read_text(), str(f)))
    paths = command_paths()
    assert len(paths) >= 20 and ("train",) in paths
    missing = [" ".join(p) for p in paths if not any(r[: len(p)] == p for r in seen)]
    assert not missing, f"commands no test invokes: {missing}"
