"""Per-epoch learning curves from run folders, seeds averaged: the data both the plots and the report draw.

The trainer appends to `metrics.jsonl` a row per logging window (`train_loss`) and one per epoch end
(`epoch`, `epoch_train_loss`, `valid_<metric>`, `time`). A resumed run continues the same file, so one run is
one curve; the manifest's `sessions` (each with `started_at`) say where each later session began, placed
between the last epoch finished before it and the next one. Runs of one experiment and fold whose configs
differ only in `training.seed` are seeds of one variant: averaged, with the min-max band over seeds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ExperimentError
from ..runs import Run, read_json

VALID_PREFIX = "valid_"


@dataclass
class RunCurve:
    """One run folder's epoch rows (epochs counted from 1)."""

    key: str
    experiment: int
    name: str
    fold: int
    seed: int | None
    variant: str  # hash of the config without training.seed: runs sharing it are seeds of one variant
    epochs: list[int]
    train_loss: list[float | None]
    valid: dict[str, list[float | None]]  # metric name -> value per epoch
    boundaries: list[float]  # x positions (between epochs) where a later session started


@dataclass
class Curve:
    """One (experiment, fold, variant): the mean over its seeds and the min-max band."""

    experiment: int
    name: str
    fold: int
    variant: str
    metric: str | None
    seeds: list[int | None]
    epochs: list[int]
    loss: list[float | None]
    loss_lo: list[float | None]
    loss_hi: list[float | None]
    valid: list[float | None]
    valid_lo: list[float | None]
    valid_hi: list[float | None]
    boundaries: list[float] = field(default_factory=list)

    def label(self, with_variant: bool = False) -> str:
        s = f"{self.experiment:04d} fold {self.fold}"
        if with_variant:
            s += f" [{self.variant[:6]}]"
        if len(self.seeds) > 1:
            s += f" ({len(self.seeds)} seeds)"
        return s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_epoch_rows(path: Path) -> list[dict[str, Any]]:
    """The epoch-end rows of a metrics.jsonl; a torn last line (a run killed mid-write) is ignored."""
    rows: list[dict[str, Any]] = []
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return rows
    for line in text.splitlines():
        if '"epoch_train_loss"' not in line and '"valid_' not in line:
            continue  # a logging-window row: most of the file, no need to parse it
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if (
            isinstance(row, dict)
            and "epoch" in row
            and ("epoch_train_loss" in row or any(k.startswith(VALID_PREFIX) for k in row))
        ):
            rows.append(row)
    return rows


_VARIANTS: dict[str, tuple[str, int | None]] = {}  # config_hash -> (variant, seed): runs share configs


def _variant(config: dict[str, Any] | None) -> tuple[str, int | None]:
    if not config:
        return "", None
    h = config.get("config_hash")
    if isinstance(h, str):  # the runs of an experiment's training.seeds share a config hash: the seed tells them apart
        h = f"{h}:{(config.get('training') or {}).get('seed')}"
    if isinstance(h, str) and h in _VARIANTS:
        return _VARIANTS[h]
    cfg = json.loads(json.dumps(config))
    cfg.pop("config_hash", None)
    seed = (cfg.get("training") or {}).pop("seed", None)
    for k in ("description", "tags", "backend"):  # not part of what was trained
        cfg.pop(k, None)
    payload = json.dumps(cfg, sort_keys=True, separators=(",", ":"))
    out = hashlib.sha256(payload.encode()).hexdigest()[:12], seed
    if isinstance(h, str):
        _VARIANTS[h] = out
    return out


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v else None


def run_curve(path: Path, manifest: dict[str, Any] | None = None, config: dict[str, Any] | None = None) -> RunCurve:
    run = Run(path)
    m = manifest if manifest is not None else (run.manifest() or {})
    cfg = config if config is not None else read_json(run.path / "config.json")
    variant, seed = _variant(cfg)
    rows = read_epoch_rows(run.metrics_path)
    by_epoch: dict[int, dict[str, Any]] = {}
    for r in rows:  # a resumed run may repeat an epoch only if truncation failed: the last row wins
        by_epoch[int(r["epoch"])] = r
    epochs = sorted(by_epoch)
    valid: dict[str, list[float | None]] = {}
    for k in sorted({k for r in by_epoch.values() for k in r if k.startswith(VALID_PREFIX)}):
        valid[k[len(VALID_PREFIX) :]] = [_num(by_epoch[e].get(k)) for e in epochs]
    boundaries = []
    times = [str(by_epoch[e].get("time") or "") for e in epochs]
    for s in (m.get("sessions") or [])[1:]:
        start = str(s.get("started_at") or "")
        done = sum(1 for t in times if t and t <= start)
        if start and 0 < done <= len(epochs):
            boundaries.append(done + 0.5)
    exp_id = m.get("experiment")
    if exp_id is None and cfg:
        exp_id = cfg.get("id")
    return RunCurve(
        key=str(m.get("run_key") or run.path.name),
        experiment=int(exp_id or 0),
        name=str(m.get("name") or run.path.parent.name),
        fold=int(m.get("fold") or 0),
        seed=seed,
        variant=variant,
        epochs=[e + 1 for e in epochs],
        train_loss=[_num(by_epoch[e].get("epoch_train_loss")) for e in epochs],
        valid=valid,
        boundaries=sorted(set(boundaries)),
    )


def metrics_of(curves: Iterable[RunCurve]) -> list[str]:
    return sorted({k for c in curves for k in c.valid})


def choose_metric(curves: Sequence[RunCurve], metric: str | None) -> str | None:
    """`metric` when some run logged it (error naming the ones logged otherwise), else the first one logged."""
    names = metrics_of(curves)
    if metric is None:
        return names[0] if names else None
    metric = metric.removeprefix(VALID_PREFIX)
    if metric not in names:
        raise ExperimentError(
            f"no run logged the validation metric {metric!r}; logged: "
            f"{', '.join(names) or 'none (no epoch finished yet)'}",
            field="--metric",
        )
    return metric


def _stats(columns: list[list[float | None]]) -> tuple[list, list, list]:
    mean, lo, hi = [], [], []
    for vals in columns:
        v = [x for x in vals if x is not None]
        mean.append(sum(v) / len(v) if v else None)
        lo.append(min(v) if v else None)
        hi.append(max(v) if v else None)
    return mean, lo, hi


def average_seeds(runs: Sequence[RunCurve], metric: str | None) -> list[Curve]:
    """One Curve per (experiment, fold, variant), in that order; epochs are the union over seeds."""
    groups: dict[tuple[int, int, str], list[RunCurve]] = {}
    for r in runs:
        groups.setdefault((r.experiment, r.fold, r.variant), []).append(r)
    out = []
    for (exp, fold, variant), rs in sorted(groups.items()):
        epochs = sorted({e for r in rs for e in r.epochs})
        idx = [{e: i for i, e in enumerate(r.epochs)} for r in rs]
        loss_cols = [[r.train_loss[ix[e]] if e in ix else None for r, ix in zip(rs, idx)] for e in epochs]
        valid_cols = [
            [
                (r.valid.get(metric) or [None] * len(r.epochs))[ix[e]] if e in ix and metric else None
                for r, ix in zip(rs, idx)
            ]
            for e in epochs
        ]
        loss, loss_lo, loss_hi = _stats(loss_cols)
        valid, valid_lo, valid_hi = _stats(valid_cols)
        out.append(
            Curve(
                experiment=exp,
                name=rs[0].name,
                fold=fold,
                variant=variant,
                metric=metric,
                seeds=sorted((r.seed for r in rs), key=lambda s: (s is None, s or 0)),
                epochs=epochs,
                loss=loss,
                loss_lo=loss_lo,
                loss_hi=loss_hi,
                valid=valid,
                valid_lo=valid_lo,
                valid_hi=valid_hi,
                boundaries=sorted({b for r in rs for b in r.boundaries}),
            )
        )
    return out
