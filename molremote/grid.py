"""`molremote derive PARENT --grid key=v1,v2 ...`: derived experiments over a grid of overrides, written as
numbered experiment files (torch-free).

Every grid point is validated against the resolved parent (unknown keys and wrong types refused, naming the
key) before any file is written; the files take the next free ids after the parent and declare
`derive(PARENT, ...)` with the point's overrides, a description naming them and a comment saying why and
how the file was made (the command line, the date). A file that does not resolve once written is removed
with the others, so an error leaves the experiments folder as it was.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ExperimentError
from .experiments import Registry, apply_overrides, parse_set

MAX_SLUG = 60


@dataclass(frozen=True)
class GridPoint:
    id: int
    path: Path
    overrides: dict[str, Any]  # flat: key.path -> value


def split_values(raw: str) -> list[str]:
    """`1e-4,3e-4` -> ['1e-4', '3e-4']; commas inside [], {} or quotes do not split (JSON values)."""
    out, cur, depth, quote = [], "", 0, ""
    for ch in raw:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        cur += ch
    out.append(cur)
    return [v.strip() for v in out]


def parse_grid(expr: str) -> tuple[str, list[Any]]:
    """`key.path=v1,v2,...` -> (key, values); each value JSON when it parses, else a string."""
    if "=" not in expr:
        raise ExperimentError(f"--grid expects key.path=v1,v2,..., got {expr!r}", field="--grid")
    key, raw = expr.split("=", 1)
    values = [parse_set(f"{key}={v}")[1] for v in split_values(raw)]
    if not key.strip() or not raw.strip() or any(v == "" for v in values):
        raise ExperimentError(f"--grid {expr!r}: empty key or value", field="--grid")
    if len(set(map(json.dumps, values))) != len(values):
        raise ExperimentError(f"--grid {expr!r}: a value is listed twice", field=key.strip())
    return key.strip(), values


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in flat.items():
        node = out
        *head, last = key.split(".")
        for part in head:
            node = node.setdefault(part, {})
        node[last] = v
    return out


def _slug_part(key: str, value: Any) -> str:
    text = f"{key.rsplit('.', 1)[-1]}{json.dumps(value) if not isinstance(value, str) else value}"
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _py(value: Any, indent: int = 0) -> str:
    """A nested dict of overrides as Python source (JSON-compatible literals, True/False/None spelled)."""
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)}: {_py(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    return repr(value)


def free_ids(taken: set[int], after: int, n: int) -> list[int]:
    out: list[int] = []
    i = after + 1
    while len(out) < n:
        if i > 9999:
            raise ExperimentError(f"no {n} free experiment ids after {after} (ids are 4 digits)", field="id")
        if i not in taken:
            out.append(i)
        i += 1
    return out


def derive_grid(
    parent: int,
    grids: list[str],
    *,
    sets: list[str] | None = None,
    why: str | None = None,
    directory: Path | None = None,
    command: str = "",
    today: str | None = None,
) -> list[GridPoint]:
    """Write one experiment file per grid point (the product of every --grid); returns them in id order."""
    import datetime as dt

    if not grids:
        raise ExperimentError("derive needs at least one --grid key.path=v1,v2,...", field="--grid")
    reg = Registry(directory)
    base = reg.resolve(parent)
    axes = [parse_grid(g) for g in grids]
    keys = [k for k, _ in axes]
    if len(set(keys)) != len(keys):
        raise ExperimentError("a key has two --grid options", field=next(k for k in keys if keys.count(k) > 1))
    fixed = dict(parse_set(s) for s in sets or [])
    points = []
    for combo in itertools.product(*(vals for _, vals in axes)):
        flat = {**fixed, **dict(zip(keys, combo))}
        # validated before anything is written: unknown keys and wrong types name the key
        try:
            apply_overrides(base, [f"{k}={json.dumps(v)}" for k, v in flat.items()])
        except ExperimentError as e:
            msg = str(e).split(": ", 1)[-1].replace(" in --set ", " in ")
            raise ExperimentError(
                f"{msg} (experiment {parent}; nothing written)", file="--grid", field=e.field
            ) from None
        points.append(flat)
    ids = free_ids(set(reg.ids()), parent, len(points))
    date = today or dt.date.today().isoformat()
    default_command = f"molremote derive {parent} " + " ".join(f"--grid {g}" for g in grids)
    out: list[GridPoint] = []
    written: list[Path] = []
    try:
        for n, (i, flat) in enumerate(zip(ids, points), 1):
            slug = "_".join([base.slug, *(_slug_part(k, v) for k, v in flat.items())])[:MAX_SLUG].strip("_")
            path = reg.dir / f"{i:04d}_{slug}.py"
            what = ", ".join(f"{k}={json.dumps(v)}" for k, v in flat.items())
            lines = [
                f'"""Experiment {parent} ({base.slug}) with {what}: point {n} of {len(points)} of a grid.',
                "",
                f"Why: {why}" if why else f"Why: tuning {', '.join(keys)} around experiment {parent}.",
                f"Made by `{command or default_command}`"
                f" on {date}; compare with `molremote ls` / `molremote scores`." + '"""',
                "from molremote.experiments import derive",
                "",
                "EXPERIMENT = derive(",
                f"    {parent},",
                f"    description={json.dumps(f'{base.description} | {what}'[:200])},",
            ]
            for section, value in _nest(flat).items():
                lines.append(f"    {section}={_py(value)},  # grid point {n}/{len(points)}")
            lines.append(")")
            from .fsutil import write_text

            write_text(path, "\n".join(lines) + "\n")
            written.append(path)
            out.append(GridPoint(i, path, flat))
        check = Registry(reg.dir)
        for point in out:
            check.resolve(point.id)
    except BaseException:
        for f in written:
            f.unlink(missing_ok=True)
        raise
    return out
