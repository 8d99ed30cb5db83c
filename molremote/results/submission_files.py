"""Submission and prediction files: format specs, reading, checking, atomic writing. Imports no torch.

A `SubmissionSpec` says what a task's file looks like (id column, value columns, id type, value range).
`check_submission(path, spec, expected_ids=None)` reads a file and refuses it with a `SubmissionError` that
names the file, the column and the offending rows/values. `read_predictions` reads any "id column + value
columns" CSV or parquet file into a `Predictions` (numpy ids + float64 value matrix) for ensembling.

Reading uses pyarrow.csv (multi-threaded C++ parser, ~10x faster than pandas.read_csv): a 1,674,896-row
BELKA `id,binds` file reads and checks in a fraction of a second.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import SubmissionError
from ..fsutil import atomic_output

if TYPE_CHECKING:  # pragma: no cover
    from .long_format import LongFormat

SHOW = 5  # how many offending ids/rows/values an error message shows


# ---------------------------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class SubmissionSpec:
    """The shape of a task's submission file.

    value_cols: exact value column names in order; None = any number of value columns (names checked only
    by `n_values`/`numbered_values`). numbered_values: value columns must be "0", "1", ..., "k-1"
    (text2mol: one column per test molecule, in test_cids.txt order).
    """

    name: str
    id_col: str
    value_cols: tuple[str, ...] | None = None
    id_type: str = "int"  # "int" | "str"
    value_range: tuple[float, float] | None = None  # inclusive
    numbered_values: bool = False
    n_values: int | None = None  # number of value columns when value_cols is None
    extension: str = ".csv"
    # a long-format file (one `id<sep>key<sep>value` row per pair, e.g. CAFA's protein/GO term/score):
    # read, checked, averaged and written by molremote.results.long_format; id_col is then the LongFormat's
    long: LongFormat | None = None

    def expected_columns(self, header: Sequence[str] | None = None) -> list[str] | None:
        """Full expected header, or None when it depends on the file (then checked by rules)."""
        if self.value_cols is not None:
            return [self.id_col, *self.value_cols]
        if self.numbered_values and self.n_values is not None:
            return [self.id_col, *map(str, range(self.n_values))]
        return None


def generic_spec(
    id_col: str,
    value_cols: Sequence[str] | None = None,
    *,
    id_type: str = "str",
    value_range: tuple[float, float] | None = None,
    n_values: int | None = None,
    name: str = "generic",
) -> SubmissionSpec:
    """ "id column + value columns", e.g. `generic_spec("sig_id", targets, value_range=(0, 1))`. A task's own
    format lives in its package (`TaskResults.submission_spec()`)."""
    return SubmissionSpec(
        name,
        id_col=id_col,
        value_cols=tuple(value_cols) if value_cols is not None else None,
        id_type=id_type,
        value_range=value_range,
        n_values=n_values,
    )


# ---------------------------------------------------------------------------------------------- data
@dataclass
class Predictions:
    """One file's predictions: ids (int64 or str numpy array), values (n, k) float64, column names."""

    ids: np.ndarray
    values: np.ndarray
    columns: tuple[str, ...]
    id_col: str
    source: str  # file path or member name, used in messages
    path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def to_table(self) -> pa.Table:
        cols = {self.id_col: pa.array(self.ids)}
        for j, c in enumerate(self.columns):
            cols[c] = pa.array(self.values[:, j])
        return pa.table(cols)

    def to_pandas(self):  # noqa: ANN201 - pandas imported lazily by pyarrow
        return self.to_table().to_pandas()


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def _few(values: Iterable[Any], n: int = SHOW) -> str:
    vals = list(values)
    shown = ", ".join(map(str, vals[:n]))
    return shown + (f", ... ({len(vals)} in all)" if len(vals) > n else "")


def id_mismatch(expected: np.ndarray, got: np.ndarray, head: str, missing_label: str, extra_label: str) -> str:
    """`head; N <missing_label>: a few; M <extra_label>: a few` for two id sets that differ."""
    missing, extra = np.setdiff1d(expected, got), np.setdiff1d(got, expected)
    parts = [head]
    if len(missing):
        parts.append(f"{len(missing)} {missing_label}: {_few(missing)}")
    if len(extra):
        parts.append(f"{len(extra)} {extra_label}: {_few(extra)}")
    return "; ".join(parts)


def read_header(path: Path) -> list[str]:
    """The header of a CSV file (first line), or a SubmissionError naming the file."""
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path}: file not found")
    with open(path, "rb") as f:
        raw = f.readline(1 << 20)  # a header line; a binary file has no newline to stop at
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SubmissionError(
            f"{path}: not a UTF-8 text CSV file (byte 0x{raw[e.start]:02x} at offset {e.start} of its first line)"
        ) from None
    if "\x00" in line:
        raise SubmissionError(f"{path}: not a CSV text file (NUL byte in its first line)")
    if not line.strip():
        raise SubmissionError(f"{path}: empty file (no header line)")
    return next(csv.reader([line]))


def check_header(path: Path, header: Sequence[str], spec: SubmissionSpec) -> None:
    header = list(header)
    if spec.long is not None:  # no header: the first line must already be a data row of the format
        from .long_format import looks_long

        if not looks_long(",".join(header), spec.long):
            raise SubmissionError(
                f"{path}: first line {','.join(header)[:80]!r} is not a {spec.name} row "
                f"({spec.long.sep.join(spec.long.columns)!r}{', no header' if not spec.long.header else ''})"
            )
        return
    expected = spec.expected_columns()
    if expected is not None:
        if header != expected:
            if sorted(header) == sorted(expected):
                raise SubmissionError(f"{path}: columns in the wrong order: {_few(header)}; expected {_few(expected)}")
            missing = [c for c in expected if c not in header]
            extra = [c for c in header if c not in expected]
            detail = "; ".join(
                x
                for x in (
                    f"missing column(s) {_few(missing)}" if missing else "",
                    f"unexpected column(s) {_few(extra)}" if extra else "",
                )
                if x
            )
            raise SubmissionError(
                f"{path}: wrong header {_few(header)}; expected {_few(expected)}" + (f" ({detail})" if detail else "")
            )
        return
    if not header or header[0] != spec.id_col:
        raise SubmissionError(
            f"{path}: first column must be {spec.id_col!r}, header starts with {header[0] if header else None!r}"
        )
    values = header[1:]
    if not values:
        raise SubmissionError(f"{path}: no value columns after {spec.id_col!r}")
    if spec.numbered_values:
        want = [str(i) for i in range(len(values))]
        if values != want:
            bad = [(i, c) for i, c in enumerate(values) if c != str(i)]
            raise SubmissionError(
                f"{path}: value columns must be numbered 0..{len(values) - 1} in order; "
                f"header field(s) {_few(f'{i + 2}={c!r} (expected {str(i)!r})' for i, c in bad)}"
            )
    if spec.n_values is not None and len(values) != spec.n_values:
        raise SubmissionError(f"{path}: {len(values)} value columns, expected {spec.n_values}")
    dup = sorted({c for c in values if values.count(c) > 1}) if len(set(values)) != len(values) else []
    if dup:
        raise SubmissionError(f"{path}: duplicate column name(s) {_few(dup)}")


def _read_csv(path: Path, header: list[str], id_col: str, id_type: str | None) -> pa.Table:
    types: dict[str, pa.DataType] = {c: pa.float64() for c in header if c != id_col}
    if id_type == "int":
        types[id_col] = pa.int64()
    elif id_type == "str":
        types[id_col] = pa.string()
    try:
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    except pa.ArrowInvalid as e:
        # pyarrow says e.g. "CSV parse error: Expected 2 columns, got 1: 1234" (truncated line) or
        # "In CSV column #1: CSV conversion error to double: invalid value 'abc'".
        msg = str(e)
        col = ""
        if "column #" in msg:
            try:
                k = int(msg.split("column #", 1)[1].split(":", 1)[0])
                col = f" (column {header[k]!r})"
            except (ValueError, IndexError):
                pass
        raise SubmissionError(f"{path}: cannot be read as CSV{col}: {msg.splitlines()[0]}") from None


def _ids_to_numpy(col: pa.ChunkedArray, source: str, id_col: str) -> np.ndarray:
    if col.null_count:
        rows = np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))
        raise SubmissionError(
            f"{source}: column {id_col!r} has {col.null_count} empty id(s) at data row(s) {_few(rows + 1)}"
        )
    if pa.types.is_integer(col.type):
        return col.to_numpy().astype(np.int64, copy=False)
    return np.asarray(col.to_numpy(zero_copy_only=False).astype(str))


def _values_to_numpy(table: pa.Table, columns: Sequence[str]) -> np.ndarray:
    n = table.num_rows
    out = np.empty((n, len(columns)), dtype=np.float64)
    for j, c in enumerate(columns):
        col = table.column(c)
        if not pa.types.is_floating(col.type) and not pa.types.is_integer(col.type):
            try:
                col = col.cast(pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise SubmissionError(f"column {c!r} of type {col.type} is not numeric") from None
        # nulls (empty cells, "NaN", "NA") become NaN here and are reported by the finiteness check
        out[:, j] = col.to_numpy(zero_copy_only=False)
    return out


def read_predictions(
    path: Path | str,
    spec: SubmissionSpec | None = None,
    *,
    id_col: str | None = None,
    columns: Sequence[str] | None = None,
) -> Predictions:
    """Read a CSV or parquet prediction file into numpy ids + float64 values.

    With a spec the header is checked against it; without one the id column is `id_col` (default: the first
    column) and the value columns are `columns` (default: all others).
    """
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path}: file not found")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as e:
            raise SubmissionError(f"{path}: cannot be read as parquet: {e}") from None
        header = table.column_names
        if spec is not None and columns is None:
            want = spec.expected_columns()
            if want is not None and all(c in header for c in want):
                header = want  # parquet prediction files may carry extra columns (labels, protein, ...)
            check_header(path, header, spec)
    else:
        header = read_header(path)
        if spec is not None:
            check_header(path, header, spec)
        table = None
    idc = spec.id_col if spec is not None else (id_col or header[0])
    if idc not in header:
        raise SubmissionError(f"{path}: no id column {idc!r} (columns: {_few(header)})")
    vcols = list(columns) if columns is not None else [c for c in header if c != idc]
    missing = [c for c in vcols if c not in header]
    if missing:
        raise SubmissionError(f"{path}: missing column(s) {_few(missing)}")
    if table is None:
        table = _read_csv(path, header, idc, spec.id_type if spec else None)
    ids = _ids_to_numpy(table.column(idc), str(path), idc)
    try:
        values = _values_to_numpy(table, vcols)
    except SubmissionError as e:
        raise SubmissionError(f"{path}: {e}") from None
    return Predictions(ids=ids, values=values, columns=tuple(vcols), id_col=idc, source=str(path), path=path)


def read_parquet_columns(path: Path, columns: Sequence[str]) -> pa.Table:
    """A prediction parquet file (e.g. a run's predictions/valid.parquet) that must have `columns`; a DataError
    naming the file and the missing columns otherwise."""
    import pyarrow.parquet as pq

    from ..errors import DataError

    try:
        t = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: cannot read as parquet: {e}") from None
    missing = [c for c in columns if c not in t.column_names]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(t.column_names)})")
    return t


# ---------------------------------------------------------------------------------------------- checks
def duplicate_ids(ids: np.ndarray) -> np.ndarray:
    """Sorted unique ids that occur more than once (sort once; O(n log n), no Python loop)."""
    s = np.sort(ids, kind="stable")
    d = s[1:][s[1:] == s[:-1]]
    return np.unique(d)


def is_strictly_sorted(ids: np.ndarray) -> bool:
    return len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1]))


def check_predictions(
    pred: Predictions,
    spec: SubmissionSpec | None = None,
    *,
    expected_ids: np.ndarray | None = None,
    n_rows: int | None = None,
    duplicates: bool = True,
) -> Predictions:
    """Row count, duplicate/missing/extra ids, NaN/inf, value range. Raises SubmissionError naming
    `pred.source`, the column and a few offending rows. duplicates=False skips the duplicate-id check (for
    callers that sort by id anyway and find duplicates there)."""
    src = pred.source
    n = len(pred)
    if n == 0:
        raise SubmissionError(f"{src}: no data rows")
    if n_rows is not None and n != n_rows:
        raise SubmissionError(f"{src}: {n} data rows, expected {n_rows}")
    sorted_fast = is_strictly_sorted(pred.ids)
    if duplicates and not sorted_fast:
        dup = duplicate_ids(pred.ids)
        if len(dup):
            raise SubmissionError(f"{src}: column {pred.id_col!r} has {len(dup)} duplicated id(s): {_few(dup)}")
    if expected_ids is not None:
        exp = np.asarray(expected_ids)
        if exp.dtype.kind in "US" or pred.ids.dtype.kind in "US":
            exp, got = exp.astype(str), pred.ids.astype(str)
        else:
            got = pred.ids
        same = len(exp) == n and (np.array_equal(got, exp) or np.array_equal(np.sort(got), np.sort(exp)))
        if not same:
            parts = id_mismatch(
                exp, got, f"{n} rows, expected {len(exp)}", "expected id(s) missing", "unexpected id(s)"
            )
            raise SubmissionError(f"{src}: column {pred.id_col!r}: " + parts)
    v = pred.values
    finite = np.isfinite(v)
    if not finite.all():
        j = int(np.flatnonzero(~finite.all(axis=0))[0])
        rows = np.flatnonzero(~finite[:, j])
        raise SubmissionError(
            f"{src}: column {pred.columns[j]!r} has {len(rows)} empty/NaN/inf value(s), "
            f"id(s) {_few(pred.ids[rows])} (data rows {_few(rows + 1)}), values "
            f"{_few(v[rows[:SHOW], j])}"
        )
    if spec is not None and spec.value_range is not None:
        lo, hi = spec.value_range
        bad = (v < lo) | (v > hi)
        if bad.any():
            j = int(np.flatnonzero(bad.any(axis=0))[0])
            rows = np.flatnonzero(bad[:, j])
            raise SubmissionError(
                f"{src}: column {pred.columns[j]!r} has {len(rows)} value(s) outside "
                f"[{lo}, {hi}]: {_few(v[rows[:SHOW], j])} at id(s) {_few(pred.ids[rows])}"
            )
    return pred


def check_submission(
    path: Path | str,
    spec: SubmissionSpec,
    expected_ids: np.ndarray | Sequence | None = None,
    *,
    n_rows: int | None = None,
) -> Predictions:
    """Read `path` and check it against `spec` (header and column order, row count, id set, NaN/inf, value
    range). Returns the parsed predictions; raises SubmissionError naming file, column and rows. A long-format
    spec is checked by molremote.results.long_format.check_long_file (returning its LongTable)."""
    if spec.long is not None:
        from .long_format import check_long_file

        return check_long_file(path, spec.long)  # type: ignore[return-value]  # a LongTable for long formats
    pred = read_predictions(path, spec)
    return check_predictions(
        pred, spec, expected_ids=None if expected_ids is None else np.asarray(expected_ids), n_rows=n_rows
    )


# ---------------------------------------------------------------------------------------------- writing
def _as_table(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, Predictions):
        return data.to_table()
    try:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return pa.Table.from_pandas(data, preserve_index=False)
    except ImportError:  # pragma: no cover - pandas is a core dependency
        pass
    if isinstance(data, dict):
        return pa.table(data)
    raise TypeError(
        f"cannot write {type(data).__name__} as a submission (need a DataFrame, pyarrow Table, "
        "dict of columns or Predictions)"
    )


def write_submission_atomic(
    data: Any,
    path: Path | str,
    *,
    spec: SubmissionSpec | None = None,
    expected_ids: np.ndarray | Sequence | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a CSV (header unquoted, as Kaggle's samples) atomically (fsutil.atomic_output).

    With `spec` the data is checked first, so a file that fails the format check is never written. An
    existing `path` is kept (SubmissionError) unless `overwrite=True`; a failed write leaves it untouched.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise SubmissionError(f"{path}: already exists (pass overwrite=True / --overwrite to replace it)")
    table = _as_table(data)
    if spec is not None:
        check_header(path, table.column_names, spec)
        idc = spec.id_col
        pred = Predictions(
            ids=_ids_to_numpy(table.column(idc), str(path), idc),
            values=_values_to_numpy(table, [c for c in table.column_names if c != idc]),
            columns=tuple(c for c in table.column_names if c != idc),
            id_col=idc,
            source=str(path),
        )
        check_predictions(pred, spec, expected_ids=None if expected_ids is None else np.asarray(expected_ids))
    with atomic_output(path) as f:
        # pyarrow quotes header names ("id","binds"); write the header ourselves, then the rows with
        # pyarrow's C++ writer (~10x faster than DataFrame.to_csv on 1.7M rows).
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(table.column_names)
        f.write(buf.getvalue().encode())
        pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return path
