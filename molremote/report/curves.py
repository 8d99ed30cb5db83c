"""Learning-curve figures (PNG or SVG) with matplotlib, Agg backend, imported only here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import ExperimentError
from ..fsutil import atomic_path
from .series import Curve

FORMATS = ("png", "svg")
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P")
DPI = 110  # ~1400 px wide at the default size: sharp on a laptop screen, ~100 KB


def figure_format(out: Path | str) -> str:
    ext = Path(out).suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise ExperimentError(f"cannot write {out}: the file name must end in .png or .svg", field="-o")
    return ext


def _has(values: Sequence[float | None]) -> bool:
    return any(v is not None for v in values)


def draw(curves: Sequence[Curve], out: Path | str, *, title: str | None = None) -> Path:
    """Two panels, train loss and the validation metric per epoch: a colour per experiment, a line style per
    fold, the seed band shaded, dotted verticals where a resumed session began. Returns `out`."""
    if not curves:
        raise ExperimentError("nothing to plot: no run of these experiments has finished an epoch")
    fmt = figure_format(out)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    metric = next((c.metric for c in curves if c.metric), None)
    exps = sorted({c.experiment for c in curves})
    colour = {e: plt.get_cmap("tab10")(i % 10) for i, e in enumerate(exps)}
    variants = {e: len({c.variant for c in curves if c.experiment == e}) for e in exps}
    fig, (ax_loss, ax_valid) = plt.subplots(1, 2, figsize=(12.5, 5.0), constrained_layout=True)
    resumed = False
    for c in curves:
        style = dict(
            color=colour[c.experiment],
            linestyle=LINESTYLES[c.fold % len(LINESTYLES)],
            linewidth=1.6,
            marker=MARKERS[c.fold % len(MARKERS)],
            markersize=3,
        )
        label = c.label(with_variant=variants[c.experiment] > 1)
        for ax, y, lo, hi in ((ax_loss, c.loss, c.loss_lo, c.loss_hi), (ax_valid, c.valid, c.valid_lo, c.valid_hi)):
            if not _has(y):
                continue
            xs = [x for x, v in zip(c.epochs, y) if v is not None]
            ax.plot(xs, [v for v in y if v is not None], label=label, **style)
            if len(c.seeds) > 1:
                pts = [(x, a, b) for x, a, b in zip(c.epochs, lo, hi) if a is not None and b is not None]
                ax.fill_between(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    [p[2] for p in pts],
                    color=colour[c.experiment],
                    alpha=0.18,
                    linewidth=0,
                )
            for b in c.boundaries:
                resumed = True
                ax.axvline(b, color=colour[c.experiment], linestyle=":", linewidth=1.0, alpha=0.8)
    ax_loss.set(title="Training loss (mean over the epoch)", xlabel="epoch", ylabel="train loss")
    ax_valid.set(
        title=f"Validation {metric or 'metric'} (end of epoch)",
        xlabel="epoch",
        ylabel=f"valid {metric}" if metric else "",
    )
    for ax in (ax_loss, ax_valid):
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, labels = ax_valid.get_legend_handles_labels()
    if not handles:
        handles, labels = ax_loss.get_legend_handles_labels()
    if resumed:
        handles.append(Line2D([], [], color="grey", linestyle=":"))
        labels.append("session boundary (resumed)")
    if any(len(c.seeds) > 1 for c in curves):
        from matplotlib.patches import Patch

        handles.append(Patch(color="grey", alpha=0.25))
        labels.append("band: min-max over seeds")
    ax_valid.legend(handles, labels, fontsize=8, loc="best", ncol=1 if len(labels) <= 12 else 2)
    names = sorted({c.name for c in curves})
    fig.suptitle(title or "Learning curves: " + ", ".join(names), fontsize=12)
    with atomic_path(out, suffix=f".{fmt}") as tmp:
        fig.savefig(tmp, format=fmt, dpi=DPI)
    plt.close(fig)
    return Path(out)
