"""Averaging prediction/submission files by id, fitting blend weights, correlation heatmaps, ensemble records.

Imports no torch (and never may: `molremote ensemble` must stay fast); matplotlib is imported only inside
`correlation_heatmap`.

Alignment is BY ID, never by position. Each member is sorted by id once (a fast path when the file is
already sorted; an O(n) counting scatter for dense integer ids such as BELKA's; numpy argsort otherwise),
then its id array is compared to the first member's with np.array_equal and its values are added to a
float64 accumulator. Why not pandas: a pandas merge/concat + groupby on 10 x 1.7M rows hashes every id of
every member, builds a 17M-row frame and an object-heavy groupby; sorting each member once is O(n log n)
in C on a flat int64 array, the equality check is one memcmp, and the weighted sum streams member by
member so memory stays at ~one member + the accumulator (benchmarks/ensemble.py measures both).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Union

import numpy as np
import pyarrow as pa

from ..errors import SubmissionError
from ..fsutil import atomic_path, write_json
from ..runs import MANIFEST, find_run_dir, key_of_dir
from .submission_files import (
    Predictions,
    SubmissionSpec,
    _few,
    _ids_to_numpy,
    _values_to_numpy,
    check_predictions,
    id_mismatch,
    is_strictly_sorted,
    read_predictions,
    sha256_file,
    write_submission_atomic,
)

MemberLike = Union[Path, str, Predictions, "tuple[str, Any]"]
METHODS = ("mean", "rank", "geo", "logit")
NORMALISE = (None, "zscore", "minmax")
CLIP = 1e-7  # geo/logit: keep log() finite for predictions of exactly 0 or 1 (float32 resolution near 1)
RECORD_NAME = "ensemble.json"
RECORD_VERSION = 1


# ---------------------------------------------------------------------------------------------- members
def _member_name(m: Any, i: int) -> str:
    if isinstance(m, tuple):
        return str(m[0])
    if isinstance(m, Predictions):
        return Path(m.source).stem if m.path else m.source
    p = Path(m)
    run = find_run_dir(p)
    return (
        key_of_dir(run)
        if run is not None
        else p.stem
        if p.stem not in ("submission", "test", "valid")
        else f"{p.parent.name}/{p.name}"
    )


def load_member(
    m: MemberLike,
    *,
    spec: SubmissionSpec | None = None,
    id_col: str | None = None,
    columns: Sequence[str] | None = None,
) -> Predictions:
    """A member as Predictions: a path (CSV or parquet), a Predictions, or (name, table | DataFrame | path)."""
    if isinstance(m, Predictions):
        return m
    if isinstance(m, tuple):
        if len(m) != 2:
            raise SubmissionError(f"ensemble member {m!r}: expected (name, table)")
        name, data = m
        if isinstance(data, (str, Path)):
            p = load_member(data, spec=spec, id_col=id_col, columns=columns)
            p.source = f"{name} ({p.source})"
            return p
        if isinstance(data, Predictions):
            return data
        if not isinstance(data, pa.Table):
            import pandas as pd

            if not isinstance(data, pd.DataFrame):
                raise SubmissionError(
                    f"ensemble member {name!r}: a {type(data).__name__}, expected a pyarrow Table, "
                    "DataFrame, Predictions or path"
                )
            data = pa.Table.from_pandas(data, preserve_index=False)
        idc = spec.id_col if spec is not None else (id_col or data.column_names[0])
        if idc not in data.column_names:
            raise SubmissionError(
                f"ensemble member {name!r}: no id column {idc!r} (columns: {_few(data.column_names)})"
            )
        vcols = list(columns) if columns is not None else [c for c in data.column_names if c != idc]
        try:
            values = _values_to_numpy(data, vcols)
        except (SubmissionError, KeyError) as e:
            raise SubmissionError(f"ensemble member {name!r}: {e}") from None
        return Predictions(
            ids=_ids_to_numpy(data.column(idc), str(name), idc),
            values=values,
            columns=tuple(vcols),
            id_col=idc,
            source=str(name),
        )
    return read_predictions(Path(m), spec, id_col=id_col, columns=columns)


def _dense_order(ids: np.ndarray) -> np.ndarray | tuple[None, np.ndarray] | None:
    """Sorting permutation of dense integer ids by counting (O(n)), or None when the ids are too sparse.

    BELKA test ids are one contiguous block and text2mol ids are 0..n-1: scattering each row to slot id-min
    takes ~30 ms for 1.7M rows where argsort takes ~400 ms. Returns (None, duplicated ids) on duplicates.
    """
    n = len(ids)
    lo, hi = int(ids.min()), int(ids.max())
    span = hi - lo + 1
    if span > 2 * n + 1024:  # sparse ids: the slot table would be mostly empty; argsort instead
        return None
    pos = ids - lo
    cnt = np.bincount(pos, minlength=span)
    if n and cnt.max() > 1:
        return None, np.flatnonzero(cnt > 1) + lo
    slots = np.full(span, -1, dtype=np.intp)
    slots[pos] = np.arange(n, dtype=np.intp)
    return slots if span == n else slots[cnt > 0]


def sort_by_id(pred: Predictions) -> tuple[Predictions, np.ndarray | None]:
    """(pred sorted by id, the permutation used or None when already sorted). Refuses duplicate ids."""
    ids = pred.ids
    if is_strictly_sorted(ids):  # fast path: one vectorised comparison, no copy; also proves no duplicates
        return pred, None
    order = _dense_order(ids) if ids.dtype.kind in "iu" else None
    if order is None:
        order = np.argsort(ids, kind="stable")
        s = ids[order]
        dup = s[1:] == s[:-1]
        if dup.any():
            d = np.unique(s[1:][dup])
            raise SubmissionError(f"{pred.source}: column {pred.id_col!r} has {len(d)} duplicated id(s): {_few(d)}")
    elif isinstance(order, tuple):  # duplicates found by the counting pass
        d = order[1]
        raise SubmissionError(f"{pred.source}: column {pred.id_col!r} has {len(d)} duplicated id(s): {_few(d)}")
    s = ids[order]
    return Predictions(
        ids=s,
        values=pred.values[order],
        columns=pred.columns,
        id_col=pred.id_col,
        source=pred.source,
        path=pred.path,
        meta=pred.meta,
    ), order


def _match(ref: Predictions, other: Predictions) -> Predictions:
    """Check `other` (sorted) has the same ids and columns as `ref` (sorted); reorder columns by name."""
    if other.id_col != ref.id_col:
        raise SubmissionError(f"{other.source}: id column {other.id_col!r}, but {ref.source} has {ref.id_col!r}")
    if other.columns != ref.columns:
        if sorted(other.columns) != sorted(ref.columns):
            missing = [c for c in ref.columns if c not in other.columns]
            extra = [c for c in other.columns if c not in ref.columns]
            raise SubmissionError(
                f"{other.source}: columns differ from {ref.source}: "
                + "; ".join(
                    x
                    for x in (f"missing {_few(missing)}" if missing else "", f"extra {_few(extra)}" if extra else "")
                    if x
                )
            )
        idx = [other.columns.index(c) for c in ref.columns]
        other = Predictions(
            ids=other.ids,
            values=other.values[:, idx],
            columns=ref.columns,
            id_col=other.id_col,
            source=other.source,
            path=other.path,
            meta=other.meta,
        )
    a, b = ref.ids, other.ids
    if a.dtype.kind != b.dtype.kind:  # int ids in one file, text in another: compare as text
        a, b = a.astype(str), b.astype(str)
    if not np.array_equal(a, b):
        parts = id_mismatch(
            a,
            b,
            f"{len(b)} rows vs {len(a)} in {ref.source}",
            f"id(s) of {ref.source} missing",
            f"id(s) not in {ref.source}",
        )
        raise SubmissionError(f"{other.source}: id set differs: " + parts)
    return other


# ---------------------------------------------------------------------------------------------- combining
def _check_method(method: str, normalise: str | None, axis: str) -> None:
    if method not in METHODS:
        raise SubmissionError(f"unknown ensemble method {method!r} (choose from {', '.join(METHODS)})")
    if normalise not in NORMALISE:
        raise SubmissionError(f"unknown normalisation {normalise!r} (choose from none, zscore, minmax)")
    if axis not in ("row", "column"):
        raise SubmissionError(f"unknown axis {axis!r} (choose row or column)")
    if normalise is not None and method in ("geo", "logit"):
        raise SubmissionError(f"method {method!r} needs probabilities; it cannot follow {normalise!r} normalisation")


def normalise_values(v: np.ndarray, normalise: str | None, axis: str = "column") -> np.ndarray:
    """z-score or min-max each column (axis="column") or each row (axis="row")."""
    if normalise is None:
        return v
    ax = 0 if axis == "column" else 1
    if normalise == "zscore":
        mu = v.mean(axis=ax, keepdims=True)
        sd = v.std(axis=ax, keepdims=True)
        return (v - mu) / np.where(sd > 0, sd, 1.0)  # a constant row/column maps to 0, not NaN
    if normalise == "minmax":
        lo, hi = v.min(axis=ax, keepdims=True), v.max(axis=ax, keepdims=True)
        return (v - lo) / np.where(hi > lo, hi - lo, 1.0)
    raise SubmissionError(f"unknown normalisation {normalise!r}")


def rank_values(v: np.ndarray, axis: str = "column") -> np.ndarray:
    """Average ranks (ties share their mean rank) scaled to (0, 1] by the count: scipy.stats.rankdata / n."""
    from scipy.stats import rankdata

    ax = 0 if axis == "column" else 1
    return rankdata(v, method="average", axis=ax) / v.shape[ax]


def _transform(v: np.ndarray, method: str, normalise: str | None, axis: str, source: str = "") -> np.ndarray:
    v = normalise_values(v, normalise, axis)
    if method == "rank":
        return rank_values(v, axis)
    if method in ("geo", "logit"):
        if v.min() < 0 or (method == "logit" and v.max() > 1):
            raise SubmissionError(
                f"{source}: method {method!r} needs values in [0, 1]"
                f"{'' if method == 'logit' else ' (or >= 0)'}; found {v.min():.4g}..{v.max():.4g}"
            )
        c = np.clip(v, CLIP, 1 - CLIP if method == "logit" else np.inf)
        return np.log(c) if method == "geo" else np.log(c) - np.log1p(-c)
    return v


def _finish(acc: np.ndarray, method: str) -> np.ndarray:
    if method == "geo":
        return np.exp(acc)
    if method == "logit":
        return 1.0 / (1.0 + np.exp(-acc))
    return acc


def normalise_weights(weights: Sequence[float] | np.ndarray | None, n: int) -> np.ndarray:
    """Uniform when None; otherwise checked (length, finite, >= 0, positive sum) and scaled to sum 1."""
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64).ravel()
    if len(w) != n:
        raise SubmissionError(f"{len(w)} weight(s) for {n} ensemble member(s)")
    if not np.isfinite(w).all() or (w < 0).any():
        raise SubmissionError(f"weights must be finite and >= 0, got {_few(w)}")
    if w.sum() <= 0:
        raise SubmissionError("weights sum to 0")
    return w / w.sum()


def combine(
    arrays: Sequence[np.ndarray],
    weights: Sequence[float] | np.ndarray | None = None,
    method: str = "mean",
    normalise: str | None = None,
    axis: str = "column",
) -> np.ndarray:
    """Blend position-aligned arrays (e.g. OOF predictions of the same rows). `average` uses the same maths
    on id-aligned files."""
    _check_method(method, normalise, axis)
    w = normalise_weights(weights, len(arrays))
    acc: np.ndarray | None = None
    for wi, a in zip(w, arrays):
        a = np.asarray(a, dtype=np.float64)
        x = _transform(a if a.ndim > 1 else a[:, None], method, normalise, axis)
        acc = wi * x if acc is None else acc + wi * x
    if acc is None:
        raise SubmissionError("nothing to combine: no prediction arrays")
    out = _finish(acc, method)
    return out[:, 0] if np.asarray(arrays[0]).ndim == 1 else out


def average(
    members: Sequence[MemberLike],
    weights: Sequence[float] | np.ndarray | None = None,
    method: str = "mean",
    *,
    id_col: str | None = None,
    normalise: str | None = None,
    axis: str = "column",
    spec: SubmissionSpec | None = None,
    expected_ids: np.ndarray | None = None,
    order: str = "id",
    columns: Sequence[str] | None = None,
) -> Predictions:
    """Weighted average of members aligned by id.

    method: "mean" (arithmetic), "rank" (average of rank/n per column, or per row with axis="row"), "geo"
    (weighted geometric mean of probabilities), "logit" (mean in logit space). normalise: None, "zscore" or
    "minmax" per column/row (axis) before averaging. spec: check every member against a task's format
    (range, NaN). order: "id" (rows sorted by id) or "first" (the first member's row order).
    Members are read, aligned and added one at a time, so memory stays at ~one member + the accumulator.
    """
    if not members:
        raise SubmissionError("no ensemble members")
    _check_method(method, normalise, axis)
    w = normalise_weights(weights, len(members))
    ref: Predictions | None = None
    first_order: np.ndarray | None = None
    acc: np.ndarray | None = None
    for i, m in enumerate(members):
        pred = load_member(m, spec=spec, id_col=id_col, columns=columns)
        if spec is not None:
            check_predictions(pred, spec, duplicates=False)  # sort_by_id below finds duplicates
        srt, perm = sort_by_id(pred)
        if ref is None:
            ref, first_order = srt, perm
            if expected_ids is not None:
                check_predictions(srt, None, expected_ids=expected_ids)
        else:
            srt = _match(ref, srt)
        x = _transform(srt.values, method, normalise, axis, srt.source)
        if acc is None:
            acc = w[i] * x
        else:
            acc += w[i] * x
        del pred, srt, x
    assert ref is not None and acc is not None
    out = _finish(acc, method)
    ids = ref.ids
    if order == "first" and first_order is not None:
        inv = np.empty_like(first_order)
        inv[first_order] = np.arange(len(first_order))
        ids, out = ids[inv], out[inv]
    elif order not in ("id", "first"):
        raise SubmissionError(f"unknown row order {order!r} (choose id or first)")
    return Predictions(
        ids=ids,
        values=out,
        columns=ref.columns,
        id_col=ref.id_col,
        source="ensemble",
        meta={"method": method, "weights": w.tolist(), "normalise": normalise, "axis": axis},
    )


# ---------------------------------------------------------------------------------------------- weights
@dataclass
class WeightFit:
    weights: np.ndarray
    score: float  # metric of the blend with `weights`
    uniform_score: float  # metric of the uniform blend (the fit never returns worse than this)
    success: bool
    message: str
    n_evals: int

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.weights if dtype is None else self.weights.astype(dtype)

    def record(self, rows: int) -> dict[str, Any]:
        """What an ensemble or blend record says of the fit (fitted on `rows` out-of-fold rows)."""
        return {
            "on": "out-of-fold predictions",
            "rows": int(rows),
            "score": self.score,
            "uniform_score": self.uniform_score,
            "success": self.success,
            "message": self.message,
            "n_evals": self.n_evals,
        }


def fit_weights(
    oof_preds: Sequence[np.ndarray],
    y: np.ndarray,
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    greater_is_better: bool = True,
    *,
    method: str = "mean",
    normalise: str | None = None,
    axis: str = "column",
    starts: str = "all",
    eps: float = 1e-3,
    maxiter: int = 200,
) -> WeightFit:
    """Blend weights (>= 0, summing to 1) that optimise `metric_fn(y, blend)` on out-of-fold predictions, with
    scipy SLSQP as in the MoA 1st-place write-up.

    starts: "uniform" or "all" (uniform, then each member weighted 0.5 with the rest shared). eps: the finite-
    difference step; 1e-3 rather than scipy's 1.5e-8 because ranking metrics (AP, LRAP) are piecewise
    constant and a tiny step sees a zero gradient. The result is never worse on the OOF than uniform weights.
    """
    from scipy.optimize import minimize

    n = len(oof_preds)
    if n == 0:
        raise SubmissionError("no OOF predictions to fit weights on")
    shapes = {np.shape(p) for p in oof_preds}
    if len(shapes) != 1:
        raise SubmissionError(f"OOF predictions have different shapes: {_few(sorted(shapes))}")
    sign = -1.0 if greater_is_better else 1.0
    transformed = [np.asarray(p, dtype=np.float64) for p in oof_preds]
    n_evals = 0

    def loss(w: np.ndarray) -> float:
        nonlocal n_evals
        n_evals += 1
        w = np.clip(w, 0, None)
        if w.sum() <= 0:
            return np.inf
        return sign * float(metric_fn(y, combine(transformed, w, method, normalise, axis)))

    uniform = np.full(n, 1.0 / n)
    best_w, best_loss = uniform, loss(uniform)
    uniform_score = sign * best_loss
    if n == 1:
        return WeightFit(uniform, uniform_score, uniform_score, True, "one member", n_evals)
    x0s = [uniform]
    if starts == "all":
        for i in range(n):
            x = np.full(n, 0.5 / (n - 1))
            x[i] = 0.5
            x0s.append(x)
    ok, msg = False, ""
    for x0 in x0s:
        res = minimize(
            loss,
            x0,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * n,
            constraints=({"type": "eq", "fun": lambda w: w.sum() - 1.0},),
            options={"eps": eps, "maxiter": maxiter, "ftol": 1e-10},
        )
        w = np.clip(res.x, 0, None)
        w = w / w.sum() if w.sum() > 0 else uniform
        val = loss(w)
        ok, msg = ok or bool(res.success), str(res.message)
        if val < best_loss - 1e-12:
            best_w, best_loss = w, val
    return WeightFit(best_w, sign * best_loss, uniform_score, ok, msg, n_evals)


# ---------------------------------------------------------------------------------------------- heatmap
def aligned(
    members: Sequence[MemberLike],
    *,
    spec: SubmissionSpec | None = None,
    id_col: str | None = None,
    columns: Sequence[str] | None = None,
) -> list[Predictions]:
    """All members loaded and sorted by id, with matching ids and columns (holds them all in memory)."""
    out: list[Predictions] = []
    for m in members:
        srt, _ = sort_by_id(load_member(m, spec=spec, id_col=id_col, columns=columns))
        out.append(srt if not out else _match(out[0], srt))
    return out


def correlations(
    members: Sequence[MemberLike],
    *,
    method: str = "pearson",
    names: Sequence[str] | None = None,
    spec: SubmissionSpec | None = None,
    id_col: str | None = None,
):  # -> pandas.DataFrame
    """Member x member correlation of all predicted values (flattened), aligned by id."""
    import pandas as pd

    preds = aligned(members, spec=spec, id_col=id_col)
    names = list(names) if names is not None else unique_names([_member_name(m, i) for i, m in enumerate(members)])
    if method not in ("pearson", "spearman"):
        raise SubmissionError(f"unknown correlation {method!r} (pearson or spearman)")
    mat = np.vstack([p.values.ravel() for p in preds])
    if method == "spearman":
        from scipy.stats import rankdata

        mat = rankdata(mat, axis=1)
    return pd.DataFrame(np.corrcoef(mat), index=names, columns=names)


def heatmap_size(n: int, dpi: int = 100) -> tuple[int, int]:
    """Pixel (width, height) of the heatmap PNG for n members (fixed figure size: no bbox='tight')."""
    w, h = _figsize(n)
    return int(round(w * dpi)), int(round(h * dpi))


def _figsize(n: int) -> tuple[float, float]:
    side = max(4.0, 0.7 * n + 2.0)  # ~0.7 inch per cell keeps two-decimal annotations readable
    return side + 1.0, side  # + colour bar


def correlation_heatmap(
    members: Sequence[MemberLike],
    out_png: Path | str,
    *,
    method: str = "pearson",
    names: Sequence[str] | None = None,
    spec: SubmissionSpec | None = None,
    id_col: str | None = None,
    dpi: int = 100,
    title: str | None = None,
):
    """Write a member-correlation heatmap PNG (values annotated); returns the correlation DataFrame."""
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display on servers and kernels
    import matplotlib.pyplot as plt

    corr = correlations(members, method=method, names=names, spec=spec, id_col=id_col)
    n = len(corr)
    fig, ax = plt.subplots(figsize=_figsize(n), dpi=dpi)
    try:
        lo = min(0.0, float(np.nanmin(corr.values)))
        im = ax.imshow(corr.values, cmap="viridis", vmin=lo, vmax=1.0)
        ax.set_xticks(range(n), labels=list(corr.columns), rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(n), labels=list(corr.index), fontsize=8)
        for i in range(n):
            for j in range(n):
                v = corr.values[i, j]
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if v > lo + 0.6 * (1 - lo) else "white",
                )
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(title or f"{method} correlation of {n} members", fontsize=10)
        fig.tight_layout()
        with atomic_path(out_png, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return corr


# ---------------------------------------------------------------------------------------------- records
def unique_names(names: list[str]) -> list[str]:
    """Names made unique by a `#2`, `#3` suffix on repeats (member names in records and tables)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}#{k + 1}")
    return out


def content_sha256(pred: Predictions) -> str:
    """Hash of ids + values, for members given as in-memory tables."""
    import hashlib

    h = hashlib.sha256()
    h.update(np.ascontiguousarray(pred.ids).astype(str if pred.ids.dtype.kind in "OUS" else np.int64).tobytes())
    h.update(np.ascontiguousarray(pred.values, dtype=np.float64).tobytes())
    h.update(json.dumps(list(pred.columns)).encode())
    return h.hexdigest()


def describe_member(m: MemberLike, i: int = 0) -> dict[str, Any]:
    """What identifies a member: its name, file path + sha256, and when it sits in a run folder, the run's
    experiment, fold, config hash, run uid and run key (read from manifest.json)."""
    name = _member_name(m, i)
    path = m[1] if isinstance(m, tuple) and isinstance(m[1], (str, Path)) else m if isinstance(m, (str, Path)) else None
    if path is None:
        pred = m[1] if isinstance(m, tuple) else m
        pred = load_member((name, pred)) if not isinstance(pred, Predictions) else pred
        return {"name": name, "path": None, "content_sha256": content_sha256(pred), "rows": len(pred)}
    path = Path(path)
    d: dict[str, Any] = {"name": name, "path": str(path.resolve()), "sha256": sha256_file(path)}
    run = find_run_dir(path)
    if run is not None:
        d["run_key"] = key_of_dir(run)
        try:
            man = json.loads((run / MANIFEST).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise SubmissionError(f"{run / MANIFEST}: unreadable manifest: {e}") from None
        for k, key in (
            ("experiment", "experiment"),
            ("name", "experiment_name"),
            ("fold", "fold"),
            ("config_hash", "config_hash"),
            ("run_uid", "run_uid"),
            ("status", "status"),
        ):
            if k in man:
                d[key] = man[k]
        if isinstance(man.get("code"), dict):
            d["code"] = {k: man["code"][k] for k in ("commit", "dirty", "bundle_hash") if k in man["code"]}
    return d


def code_version() -> dict[str, Any]:
    """{commit, dirty, bundle_hash} of the code building the ensemble (runs.code_info: the shipped bundle on a
    remote machine, else git in the project root)."""
    from ..runs import code_info

    return code_info()


def write_record(
    out_dir: Path | str,
    members: Sequence[MemberLike],
    weights: Sequence[float] | np.ndarray | None,
    method: str,
    metrics: dict[str, Any] | None = None,
    *,
    normalise: str | None = None,
    axis: str = "column",
    task: str | None = None,
    submission: Path | str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """`out_dir/ensemble.json`: members (name, path + sha256, run key / experiment / config hash when in a
    run folder), normalised weights, method, metrics, the code commit: enough to rebuild and trace it."""
    w = normalise_weights(weights, len(members))
    descr = [describe_member(m, i) for i, m in enumerate(members)]
    names = unique_names([d["name"] for d in descr])
    for d, n, wi in zip(descr, names, w):
        d["name"], d["weight"] = n, float(wi)
    rec: dict[str, Any] = {
        "version": RECORD_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": task,
        "method": method,
        "normalise": normalise,
        "axis": axis,
        "weights": [float(x) for x in w],
        "members": descr,
        "metrics": metrics or {},
        "code": code_version(),
    }
    if submission is not None:
        sp = Path(submission)
        rec["submission"] = {"path": str(sp.resolve()), "sha256": sha256_file(sp) if sp.exists() else None}
    if extra:
        rec.update(extra)
    return write_json(Path(out_dir) / RECORD_NAME, rec)


def read_record(path: Path | str) -> dict[str, Any]:
    """An ensemble.json (or the folder holding one), checked for the fields rebuild needs."""
    p = Path(path)
    if p.is_dir():
        p = p / RECORD_NAME
    try:
        rec = json.loads(p.read_text())
    except FileNotFoundError:
        raise SubmissionError(f"{p}: ensemble record not found") from None
    except json.JSONDecodeError as e:
        raise SubmissionError(f"{p}: not valid JSON: {e}") from None
    for k in ("method", "weights", "members"):
        if k not in rec:
            raise SubmissionError(f"{p}: ensemble record has no {k!r}")
    if len(rec["weights"]) != len(rec["members"]):
        raise SubmissionError(f"{p}: {len(rec['weights'])} weights for {len(rec['members'])} members")
    return rec


def rebuild(
    record: Path | str | dict[str, Any], *, spec: SubmissionSpec | None = None, verify: bool = True
) -> Predictions:
    """Recompute an ensemble from its record, refusing members whose file changed (sha256) or vanished."""
    rec = record if isinstance(record, dict) else read_record(record)
    paths = []
    for d in rec["members"]:
        if not d.get("path"):
            raise SubmissionError(f"member {d.get('name')!r} was an in-memory table; it cannot be rebuilt from disk")
        p = Path(d["path"])
        if not p.exists():
            raise SubmissionError(f"{p}: member {d['name']!r} of the ensemble record is missing")
        if verify and d.get("sha256") and sha256_file(p) != d["sha256"]:
            raise SubmissionError(f"{p}: member {d['name']!r} changed since the ensemble was built (sha256 differs)")
        paths.append(p)
    return average(
        paths,
        rec["weights"],
        rec["method"],
        normalise=rec.get("normalise"),
        axis=rec.get("axis") or "column",
        spec=spec,
    )


# ---------------------------------------------------------------------------------------------- one call
@dataclass
class EnsembleResult:
    predictions: Predictions
    submission: Path
    record: Path
    heatmap: Path | None = None
    correlations: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def build_ensemble(
    members: Sequence[MemberLike],
    out_dir: Path | str,
    *,
    weights: Sequence[float] | np.ndarray | None = None,
    method: str | None = None,
    normalise: str | None = None,
    axis: str | None = None,
    task: str | None = None,
    spec: SubmissionSpec | None = None,
    expected_ids: np.ndarray | None = None,
    metrics: dict[str, Any] | None = None,
    heatmap: bool = True,
    overwrite: bool = False,
    filename: str = "submission.csv",
) -> EnsembleResult:
    """Average members (the task's EnsembleDefaults for method/normalisation), write `out_dir/submission.csv` (format
    checked first, atomically), `out_dir/ensemble.json` and `out_dir/correlation.png`."""
    from ..tasks import task_results
    from ..tasks.base import EnsembleDefaults

    defaults = task_results(task).ensemble if task else EnsembleDefaults()
    if spec is not None and spec.long is not None:  # pairs (id, key): aligned and averaged by long_format
        if (method or "mean") != "mean" or normalise is not None:
            raise SubmissionError(f"long-format ensembles average scores (method mean); got method {method!r}")
        return _build_long(members, Path(out_dir), spec, weights, metrics, task, overwrite, filename)
    method = method or defaults.method
    normalise = normalise if normalise is not None else defaults.normalise
    axis = axis or defaults.axis
    out_dir = Path(out_dir)
    sub_path = out_dir / filename
    if sub_path.exists() and not overwrite:
        raise SubmissionError(f"{sub_path}: already exists (pass overwrite=True / --overwrite to replace it)")
    pred = average(members, weights, method, normalise=normalise, axis=axis, spec=spec, expected_ids=expected_ids)
    write_submission_atomic(pred, sub_path, spec=spec, expected_ids=expected_ids, overwrite=overwrite)
    png, corr = None, None
    if heatmap and len(members) > 1:
        png = out_dir / "correlation.png"
        corr = correlation_heatmap(members, png, spec=spec)
    rec = write_record(
        out_dir,
        members,
        weights,
        method,
        metrics,
        normalise=normalise,
        axis=axis,
        task=task,
        submission=sub_path,
        extra={"correlation": corr.round(6).to_dict() if corr is not None else None},
    )
    return EnsembleResult(pred, sub_path, rec, png, corr)


def _build_long(
    members: Sequence[MemberLike],
    out_dir: Path,
    spec: SubmissionSpec,
    weights: Sequence[float] | np.ndarray | None,
    metrics: dict[str, Any] | None,
    task: str | None,
    overwrite: bool,
    filename: str,
) -> EnsembleResult:
    """A long-format ensemble: the weighted mean by (id, key), missing pairs counting as 0 (no heatmap: the
    members' pairs differ)."""
    from .long_format import ensemble_long

    assert spec.long is not None
    paths = []
    for m in members:
        p = m[1] if isinstance(m, tuple) else m
        if not isinstance(p, (str, Path)):
            raise SubmissionError(f"long-format ensemble members must be files, got {type(p).__name__}")
        paths.append(Path(p))
    sub_path = out_dir / filename
    if sub_path.exists() and not overwrite:
        raise SubmissionError(f"{sub_path}: already exists (pass overwrite=True / --overwrite to replace it)")
    _, table = ensemble_long(paths, sub_path, spec.long, weights, overwrite=overwrite)
    pred = Predictions(
        ids=np.asarray(table.ids),
        values=table.values[:, None],
        columns=("value",),
        id_col=spec.long.id_col,
        source=str(sub_path),
    )
    rec = write_record(
        out_dir,
        members,
        weights,
        "mean",
        metrics,
        task=task,
        submission=sub_path,
        extra={"format": "long", "pairs": len(table)},
    )
    return EnsembleResult(pred, sub_path, rec)
