"""The self-contained HTML report: one file, every asset inline, readable offline.

Rendered with jinja2 (autoescaped) from `collect.collect()`: the experiments table (sortable and filterable by
a few lines of inline JavaScript), one page per experiment (config, diff against its parent, curves, runs),
blends with their members, weights and correlation heatmap (PNG inlined as base64), running jobs, and CV
against the leaderboard (matplotlib SVG inline). Learning curves travel as compact JSON and are drawn as SVG
in the browser when a page is opened, so a report of thousands of runs stays small and quick to build.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..fsutil import write_text
from ..timefmt import format_duration

TEMPLATE = "report.html.j2"
MAX_INLINE_IMAGE = 2 << 20  # bytes; a heatmap is ~50-200 KB, anything larger is linked instead of inlined


def _fmt(v: Any, nd: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _age(seconds: float | None) -> str:
    return "" if seconds is None else format_duration(seconds)


def _data_uri(path: str | None) -> str | None:
    if not path:
        return None
    p = Path(path)
    try:
        if p.stat().st_size > MAX_INLINE_IMAGE:
            return None
        return "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()
    except OSError:
        return None


def environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("molremote.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(fmt=_fmt, age=_age, pretty=lambda d: json.dumps(d, indent=2, sort_keys=True, default=str))
    return env


def render(data: dict[str, Any], refresh: float | None = None) -> str:
    """The page; `refresh` (seconds): reload itself on that period (the --serve mode)."""
    from .leaderboard import describe, svg_text

    scores = data["scores"]
    lb_svg, corr_text = None, None
    if scores["submissions"]:
        comps = ", ".join(c["competition"] for c in scores["competitions"])
        lb_svg, corr = svg_text(scores["submissions"], comps)
        corr_text = describe(corr)
    for b in data["blends"]:
        b["heatmap_uri"] = _data_uri(b.get("heatmap"))
    curves = {str(e["id"]): e["curves"] for e in data["experiments"] if e["curves"]}
    return (
        environment()
        .get_template(TEMPLATE)
        .render(
            d=data,
            curves=curves,
            lb_svg=lb_svg,
            corr=corr_text,
            statuses=sorted({e["status"] for e in data["experiments"]}),
            refresh=refresh,
        )
    )


def build(
    out: Path | str,
    *,
    runs_root: Path | None = None,
    include_store: bool = True,
    progress: Callable[[str], None] | None = None,
    refresh: float | None = None,
) -> dict[str, Any]:
    """Collect, render and write the report atomically; returns {path, bytes, experiments, runs, warnings}."""
    from .collect import collect

    data = collect(runs_root=runs_root, include_store=include_store, progress=progress)
    html = render(data, refresh)
    path = write_text(out, html)
    return {
        "path": str(path),
        "bytes": len(html.encode()),
        "experiments": len(data["experiments"]),
        "runs": data["n_runs"],
        "blends": len(data["blends"]),
        "jobs": len(data["jobs"]),
        "warnings": data["warnings"],
    }
