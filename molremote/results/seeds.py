"""Averaging one fold's runs of several seeds into one prediction file (torch-free).

The runs of one (experiment, fold) differ only in their training seed, so their prediction files hold the same
rows in the same order: every column that is not floating point (ids, labels, groups) must be equal in all of
them and is kept; every floating-point column (the predictions) becomes the mean over the seeds. Files that do
not line up (another fold, another task) are refused naming both. `TaskResults.average_seeds` uses this unless
a task says otherwise; evaluate scores the averaged file as the fold's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..fsutil import atomic_path


def average_prediction_files(files: Sequence[Path], out: Path) -> Path:
    """Write the seeds' mean of `files` (parquet, same rows and columns) to `out`; returns `out`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not files:
        raise DataError("no prediction files to average over seeds")
    tables = [pq.read_table(f) for f in files]
    first, ref = tables[0], Path(files[0])
    cols: dict[str, object] = {}
    for name in first.column_names:
        col = first[name]
        for f, t in zip(files[1:], tables[1:]):
            if t.column_names != first.column_names or t.num_rows != first.num_rows:
                raise DataError(
                    f"{f}: columns or rows differ from {ref} ({t.num_rows} vs {first.num_rows} rows): "
                    "not runs of the same fold"
                )
        if pa.types.is_floating(col.type):
            stack = np.stack([t[name].to_numpy().astype(np.float64) for t in tables])
            cols[name] = stack.mean(axis=0)
            continue
        for f, t in zip(files[1:], tables[1:]):
            if not t[name].equals(col):
                raise DataError(
                    f"{f}: column {name!r} differs from {ref}'s: the seeds' rows do not line up "
                    "(only floating-point prediction columns are averaged)"
                )
        cols[name] = col
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        pq.write_table(pa.table(cols), tmp)
    return out
