"""CV against the Kaggle leaderboard: the scores cache, the correlation, the scatter plot.

`molremote scores` fetches a competition's submissions and joins them to local records (`submit.join_scores`);
it also keeps what it fetched in `.molremote/scores/<competition>.json`, so the report shows leaderboard scores
without asking Kaggle (no network when building or viewing it).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ExperimentError
from ..fsutil import atomic_path, write_json
from ..runs import now_iso


def scores_dir(root: Path | None = None) -> Path:
    from ..project import project_root

    return (root or project_root()) / ".molremote" / "scores"


def save_scores(competition: str, rows: Sequence[dict[str, Any]], root: Path | None = None) -> Path:
    keep = (
        "ref",
        "date",
        "status",
        "description",
        "public_score",
        "private_score",
        "molremote",
        "kind",
        "experiments",
        "hash",
        "commit",
        "cv",
        "record",
    )
    return write_json(
        scores_dir(root) / f"{competition}.json",
        {
            "competition": competition,
            "fetched_at": now_iso(),
            "submissions": [{k: r.get(k) for k in keep} for r in rows],
        },
        sort_keys=True,
    )


def load_cached_scores(root: Path | None = None) -> dict[str, Any]:
    """Every cached competition's rows, each tagged with its competition; unreadable files are named."""
    out: dict[str, Any] = {"competitions": [], "submissions": [], "errors": []}
    d = scores_dir(root)
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            doc = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            out["errors"].append(f"{p}: {e}")
            continue
        comp = doc.get("competition") or p.stem
        out["competitions"].append({"competition": comp, "fetched_at": doc.get("fetched_at")})
        out["submissions"] += [{**r, "competition": comp} for r in doc.get("submissions") or []]
    return out


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def label(row: dict[str, Any]) -> str:
    exps = "+".join(str(e) for e in row.get("experiments") or [])
    return ("ens " if row.get("kind") == "ensemble" else "") + (exps or str(row.get("ref", "?")))


def points(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Submissions with a CV and at least one leaderboard score: {label, cv, public, private}."""
    pts = []
    for r in rows:
        cv, pub, priv = _num(r.get("cv")), _num(r.get("public_score")), _num(r.get("private_score"))
        if cv is not None and (pub is not None or priv is not None):
            pts.append({"label": label(r), "cv": cv, "public": pub, "private": priv, "ref": r.get("ref")})
    return pts


def correlation(xs: Sequence[float], ys: Sequence[float]) -> dict[str, Any]:
    """Pearson and Spearman over the pairs; None where fewer than 3 pairs or a constant side."""
    n = len(xs)
    if n < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return {"n": n, "pearson": None, "spearman": None}
    import numpy as np  # not scipy.stats: its import alone takes seconds, for two coefficients

    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    return {
        "n": n,
        "pearson": float(np.corrcoef(x, y)[0, 1]),
        "spearman": float(np.corrcoef(_ranks(x), _ranks(y))[0, 1]),
    }


def _ranks(a):
    """Ranks with ties averaged (what Spearman's coefficient correlates)."""
    import numpy as np

    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(1, len(a) + 1)
    _, inverse = np.unique(a, return_inverse=True)
    return (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]


def correlations(pts: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for side in ("public", "private"):
        pairs = [(p["cv"], p[side]) for p in pts if p[side] is not None]
        out[side] = correlation([a for a, _ in pairs], [b for _, b in pairs])
    return out


def describe(corr: dict[str, dict[str, Any]]) -> str:
    parts = []
    for side in ("public", "private"):
        c = corr[side]
        if c["pearson"] is not None:
            parts.append(f"CV vs {side}: Pearson r = {c['pearson']:.3f}, Spearman = {c['spearman']:.3f} (n = {c['n']})")
        elif c["n"]:
            parts.append(f"CV vs {side}: n = {c['n']}, too few distinct points for a correlation")
    return "; ".join(parts) or "no submission has both a CV and a leaderboard score"


MAX_LABELS = 40  # beyond this the labels overlap into a blot (and each costs ~20 ms of text layout)


def _labelled(pts: Sequence[dict[str, Any]]) -> set[int]:
    """Indices of the points to label: all of them, or the MAX_LABELS // 2 best on the leaderboard."""
    if len(pts) <= MAX_LABELS:
        return set(range(len(pts)))
    best = sorted(
        range(len(pts)), key=lambda i: -(pts[i]["public"] if pts[i]["public"] is not None else pts[i]["private"])
    )
    return set(best[: MAX_LABELS // 2])


def _figure(pts: Sequence[dict[str, Any]], competition: str, corr: dict[str, dict[str, Any]]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 6.0), constrained_layout=True)
    labelled = _labelled(pts)
    for side, marker, colour in (("public", "o", "tab:blue"), ("private", "^", "tab:orange")):
        sel = [p for p in pts if p[side] is not None]
        if not sel:
            continue
        ax.scatter(
            [p["cv"] for p in sel],
            [p[side] for p in sel],
            marker=marker,
            color=colour,
            s=36,
            label=f"{side} LB" + (f" (r = {corr[side]['pearson']:.3f})" if corr[side]["pearson"] is not None else ""),
            zorder=3,
        )
        for i, p in enumerate(pts):
            if p[side] is not None and i in labelled:
                ax.annotate(p["label"], (p["cv"], p[side]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    lo = min([p["cv"] for p in pts] + [v for p in pts for v in (p["public"], p["private"]) if v is not None])
    hi = max([p["cv"] for p in pts] + [v for p in pts for v in (p["public"], p["private"]) if v is not None])
    pad = (hi - lo) * 0.05 or 0.01
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", linewidth=0.8, linestyle="--", label="LB = CV")
    ax.set(
        xlabel="CV (out-of-fold, else mean of folds)",
        ylabel="leaderboard score",
        title=f"{competition}: CV against leaderboard"
        + (f" (labels: the {len(labelled)} best of {len(pts)})" if len(labelled) < len(pts) else "")
        + f"\n{describe(corr)}",
    )
    ax.title.set_fontsize(9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def draw(rows: Sequence[dict[str, Any]], out: Path | str, competition: str) -> tuple[Path, dict[str, Any]]:
    """The scatter of CV against public (circles) and private (triangles) scores, labelled by experiment,
    the correlation in the title. Returns (out, correlations)."""
    ext = Path(out).suffix.lower().lstrip(".")
    if ext not in ("png", "svg"):
        raise ExperimentError(f"cannot write {out}: the file name must end in .png or .svg", field="--plot-out")
    pts = points(rows)
    if not pts:
        raise ExperimentError(
            "nothing to plot: no submission has both a CV in its description and a leaderboard score yet",
            field="--plot",
        )
    corr = correlations(pts)
    import matplotlib.pyplot as plt

    fig = _figure(pts, competition, corr)
    with atomic_path(out, suffix=f".{ext}") as tmp:
        fig.savefig(tmp, format=ext, dpi=110)
    plt.close(fig)
    return Path(out), corr


def svg_text(rows: Sequence[dict[str, Any]], competition: str) -> tuple[str | None, dict[str, Any]]:
    """The same figure as inline SVG text for the report (None when there is nothing to draw)."""
    pts = points(rows)
    corr = correlations(pts)
    if not pts:
        return None, corr
    import matplotlib
    import matplotlib.pyplot as plt

    # text as <text> elements (not glyph paths): selectable, searchable and a third of the size
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig = _figure(pts, competition, corr)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :], corr
