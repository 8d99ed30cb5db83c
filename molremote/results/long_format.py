"""Long-format prediction files: one row per (id, key) pair, e.g. CAFA's `protein<TAB>GO:term<TAB>score` with no
header. Reading, the format check, averaging members aligned by (id, key) with missing pairs counting as 0, and
writing (scores rounded to N significant figures, at most N keys per id). Generic: a task declares its long
format with a `LongFormat` on its `SubmissionSpec` (column names for messages, separator, header or not, value
range, significant figures, keys per id, a key pattern). Imports no torch.

How it stays fast and small (benchmarks/ensemble_long.py measures it against pandas):
  - pyarrow's C++ CSV reader parses the file; the id and key columns are then encoded as int32 codes + the
    distinct strings (hashing only the first id of each run: submissions list an id's keys together), so no
    per-row Python string is ever made;
  - each member's (small) dictionaries are mapped onto vocabularies shared by all members, and a pair becomes
    one int64 (id code << 32 | key code);
  - members are added one at a time: the member's pairs are sorted once, then merged into the running sum
    (a stable sort of two sorted runs is a linear merge in numpy's timsort) and equal pairs summed with
    np.add.reduceat, so memory stays at ~the union of pairs + one member, whatever the member count;
  - the output keeps the top `max_per_id` keys of each id (one lexsort), rounds to the significant figures
    with vectorised numpy and writes through pyarrow's CSV writer with dictionary columns.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..errors import SubmissionError
from ..fsutil import atomic_output
from .submission_files import _few

_POW10 = 10.0 ** np.arange(-300, 301, dtype=np.float64)


@dataclass(frozen=True)
class LongFormat:
    """The shape of a long-format file. Column names are used in messages (and as the header when `header`)."""

    id_col: str = "id"
    key_col: str = "key"
    value_col: str = "score"
    sep: str = "\t"
    header: bool = False
    value_range: tuple[float, float] = (0.0, 1.0)
    low_inclusive: bool = False  # CAFA: scores in (0, 1]
    high_inclusive: bool = True
    sig_figs: int | None = None  # at most this many significant figures per value (CAFA: 3)
    max_per_id: int | None = None  # at most this many keys per id (CAFA: 1,500 terms per protein)
    key_pattern: str | None = None  # a regex every key must match in full (CAFA: GO:\d{7})

    @property
    def columns(self) -> list[str]:
        return [self.id_col, self.key_col, self.value_col]


@dataclass
class LongTable:
    """Pairs as codes into two vocabularies (pyarrow string arrays) and float64 values."""

    ids: np.ndarray  # int32 codes into id_vocab
    keys: np.ndarray  # int32 codes into key_vocab
    values: np.ndarray
    id_vocab: pa.Array
    key_vocab: pa.Array
    source: str = ""

    def __len__(self) -> int:
        return len(self.values)

    def pairs(self) -> np.ndarray:
        return _pair(self.ids, self.keys)

    def to_pandas(self):  # noqa: ANN201 - for tests and small files
        import pandas as pd

        return pd.DataFrame(
            {
                "id": self.id_vocab.take(pa.array(self.ids)).to_numpy(zero_copy_only=False),
                "key": self.key_vocab.take(pa.array(self.keys)).to_numpy(zero_copy_only=False),
                "value": self.values,
            }
        )


def _pair(ids: np.ndarray, keys: np.ndarray) -> np.ndarray:
    return (ids.astype(np.int64) << 32) | keys.astype(np.int64)


# ---------------------------------------------------------------------------------------------- reading
def read_long(path: Path | str, fmt: LongFormat) -> LongTable:
    """Read a long-format file; a SubmissionError names the file and the problem (header, columns, values)."""
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path}: file not found")
    names = fmt.columns
    try:
        t = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1 if fmt.header else 0),
            parse_options=pacsv.ParseOptions(delimiter=fmt.sep),
            # strings, then encoded: pyarrow's CSV parse into dictionary columns costs ~2.5x the CPU of a plain
            # string parse (measured), more than encoding afterwards
            convert_options=pacsv.ConvertOptions(
                column_types={fmt.id_col: pa.string(), fmt.key_col: pa.string(), fmt.value_col: pa.float64()},
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as e:
        msg = str(e).splitlines()[0]
        if not fmt.header and "conversion error to double" in msg:
            first = path.open("rb").readline(200).decode("utf-8", "replace").rstrip("\n")
            raise SubmissionError(
                f"{path}: column 3 ({fmt.value_col}) must be a number on every row; {msg} (first line "
                f"{first!r}; this format has no header line)"
            ) from None
        raise SubmissionError(
            f"{path}: cannot be read as {len(names)} {fmt.sep!r}-separated columns ({', '.join(names)}): {msg}"
        ) from None
    if t.num_rows == 0:
        raise SubmissionError(f"{path}: no data rows")
    idc, keyc = t.column(fmt.id_col).combine_chunks(), t.column(fmt.key_col).combine_chunks()
    for col, name in ((idc, fmt.id_col), (keyc, fmt.key_col)):
        if col.null_count:
            rows = np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))
            raise SubmissionError(f"{path}: {col.null_count} empty {name}(s) at row(s) {_few(rows + 1)}")
    ids, id_vocab = _encode(idc, runs=True)
    keys, key_vocab = _encode(keyc)
    vals = t.column(fmt.value_col).to_numpy()
    return LongTable(ids, keys, np.asarray(vals, dtype=np.float64), id_vocab, key_vocab, source=str(path))


def _encode(col: pa.Array, runs: bool = False) -> tuple[np.ndarray, pa.Array]:
    """(int32 codes, distinct strings in first-seen order). runs: the column mostly comes in runs of equal
    values (a submission lists each protein's terms together), so only each run's first value is hashed."""
    n = len(col)
    if runs and n > 1:
        change = pc.not_equal(col.slice(1), col.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        starts = np.flatnonzero(np.r_[True, change])
        if len(starts) * 4 <= n:  # long runs: encode the heads, repeat their codes
            enc = pc.dictionary_encode(col.take(pa.array(starts)))
            codes = np.repeat(enc.indices.to_numpy(zero_copy_only=False), np.diff(np.r_[starts, n]))
            return codes.astype(np.int32, copy=False), enc.dictionary
    enc = pc.dictionary_encode(col)
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False), enc.dictionary


# ---------------------------------------------------------------------------------------------- checks
def round_sig(v: np.ndarray, figs: int) -> np.ndarray:
    """Each value rounded to `figs` significant figures (0 stays 0); vectorised."""
    v = np.asarray(v, dtype=np.float64)
    out = np.zeros_like(v)
    nz = np.flatnonzero(v != 0)
    x = v[nz]
    e = np.floor(np.log10(np.abs(x))).astype(np.int64)
    scale = _POW10[np.clip(figs - 1 - e, -300, 300) + 300]  # a table lookup: np.power costs more than log10
    y = x * scale
    r = np.round(y) / scale
    # y = x * scale is itself rounded: near a half the product may land on the wrong side. Those few values
    # take Python's correctly rounded formatting (what "%.3g" writes), so files agree with any other writer.
    near = np.flatnonzero(np.abs(y - np.floor(y) - 0.5) < 1e-6)
    if len(near):
        r[near] = [float(f"{a:.{figs}g}") for a in x[near]]
    out[nz] = r
    return out


def _name(vocab: pa.Array, codes: np.ndarray) -> list[str]:
    return vocab.take(pa.array(codes[: 5 * 2])).to_pylist()


def check_long(table: LongTable, fmt: LongFormat, *, duplicates: bool = True) -> LongTable:
    """Values finite and in range, at most `sig_figs` significant figures, no pair twice (unless duplicates is
    False: for callers that sort the pairs anyway), at most `max_per_id` keys per id, keys matching
    `key_pattern`. Raises SubmissionError naming the source and offending rows."""
    src, v = table.source, table.values
    bad = ~np.isfinite(v)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise SubmissionError(f"{src}: {len(rows)} empty/NaN/inf {fmt.value_col}(s) at row(s) {_few(rows + 1)}")
    lo, hi = fmt.value_range
    bad = (v < lo if fmt.low_inclusive else v <= lo) | (v > hi if fmt.high_inclusive else v >= hi)
    if bad.any():
        rows = np.flatnonzero(bad)
        rng = f"{'[' if fmt.low_inclusive else '('}{lo:g}, {hi:g}{']' if fmt.high_inclusive else ')'}"
        raise SubmissionError(
            f"{src}: {len(rows)} {fmt.value_col}(s) outside {rng}: {_few(v[rows[:5]])} at row(s) {_few(rows + 1)}"
        )
    if fmt.sig_figs is not None:
        r = round_sig(v, fmt.sig_figs)
        bad = np.abs(r - v) > 1e-9 * np.abs(v)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise SubmissionError(
                f"{src}: {len(rows)} {fmt.value_col}(s) with more than {fmt.sig_figs} significant figures: "
                f"{_few(v[rows[:5]])} at row(s) {_few(rows + 1)}"
            )
    if duplicates:
        _no_duplicates(np.sort(table.pairs()), table, fmt)
    if fmt.max_per_id is not None:
        counts = np.bincount(table.ids, minlength=len(table.id_vocab))
        over = np.flatnonzero(counts > fmt.max_per_id)
        if len(over):
            shown = [f"{n} ({c})" for n, c in zip(_name(table.id_vocab, over), counts[over])]
            raise SubmissionError(
                f"{src}: {len(over)} {fmt.id_col}(s) with more than {fmt.max_per_id} {fmt.key_col}s: {_few(shown)}"
            )
    if fmt.key_pattern is not None:  # a read file's vocabulary holds exactly the keys it uses
        ok = pc.match_substring_regex(table.key_vocab, f"^(?:{fmt.key_pattern})$")
        bad_keys = np.flatnonzero(~ok.to_numpy(zero_copy_only=False))
        if len(bad_keys):
            raise SubmissionError(
                f"{src}: {len(bad_keys)} {fmt.key_col}(s) not matching {fmt.key_pattern!r}: "
                f"{_few(_name(table.key_vocab, bad_keys))}"
            )
    return table


def _no_duplicates(sorted_pairs: np.ndarray, table: LongTable, fmt: LongFormat) -> None:
    s = sorted_pairs
    dup = s[1:][s[1:] == s[:-1]]
    if len(dup):
        ids, keys = (dup >> 32).astype(np.int32), (dup & 0xFFFFFFFF).astype(np.int32)
        shown = [f"{a} {b}" for a, b in zip(_name(table.id_vocab, ids), _name(table.key_vocab, keys))]
        raise SubmissionError(
            f"{table.source}: {len(np.unique(dup))} ({fmt.id_col}, {fmt.key_col}) pair(s) occur more than once: "
            f"{_few(shown)}"
        )


def check_long_file(path: Path | str, fmt: LongFormat) -> LongTable:
    """Read and check a long-format file (the submission format check)."""
    return check_long(read_long(path, fmt), fmt)


def looks_long(first_line: str, fmt: LongFormat) -> bool:
    """Whether a file's first line fits the format (three fields, a number last: no header), for telling a
    task from a file."""
    parts = first_line.rstrip("\r\n").split(fmt.sep)
    if len(parts) != 3 or not all(parts):
        return False
    try:
        float(parts[2])
    except ValueError:
        return fmt.header
    if fmt.key_pattern is not None and not re.fullmatch(fmt.key_pattern, parts[1]):
        return False
    return not fmt.header


# ---------------------------------------------------------------------------------------------- averaging
class _Vocab:
    """Strings seen so far, each with a stable code (first-seen order)."""

    def __init__(self) -> None:
        self.values: pa.Array = pa.array([], pa.string())

    def codes_for(self, member_dict: pa.Array) -> np.ndarray:
        """Global codes of a member's dictionary entries (new strings appended)."""
        if len(self.values) == 0:
            self.values = member_dict
            return np.arange(len(member_dict), dtype=np.int32)
        pos = pc.index_in(member_dict, value_set=self.values)
        codes = pos.to_numpy(zero_copy_only=False)
        new = pos.is_null().to_numpy(zero_copy_only=False)
        if new.any():
            codes = np.where(new, 0, codes)
            codes[new] = len(self.values) + np.arange(int(new.sum()))
            self.values = pa.concat_arrays([self.values, member_dict.filter(pa.array(new))])
        return codes.astype(np.int32)


def _merge(acc_k: np.ndarray, acc_v: np.ndarray, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum two sorted (pair, value) runs into one sorted run of unique pairs."""
    if len(acc_k) == 0:
        return k, v
    allk = np.concatenate([acc_k, k])
    allv = np.concatenate([acc_v, v])
    order = np.argsort(allk, kind="stable")  # timsort: two sorted runs are merged in linear time
    allk, allv = allk[order], allv[order]
    del order
    start = np.empty(len(allk), dtype=bool)
    start[0] = True
    np.not_equal(allk[1:], allk[:-1], out=start[1:])
    idx = np.flatnonzero(start)
    return allk[idx], np.add.reduceat(allv, idx)


def average_long(
    members: Sequence[Path | str | LongTable],
    fmt: LongFormat,
    weights: Sequence[float] | np.ndarray | None = None,
    *,
    check: bool = True,
) -> LongTable:
    """Weighted mean of members aligned by (id, key); a pair missing from a member counts as 0 for it.

    Weights are scaled to sum 1 (uniform when None). Each member is read (when a path), checked against `fmt`
    (when check), and merged into the running sum before the next is read. The result is not yet capped or
    rounded: `finish_long` does that for writing."""
    from .averaging import normalise_weights

    if not members:
        raise SubmissionError("no ensemble members")
    w = normalise_weights(weights, len(members))
    # the cap and the precision apply to what is written (finish_long), not to the inputs
    member_fmt = replace(fmt, max_per_id=None, sig_figs=None)
    ids_v, keys_v = _Vocab(), _Vocab()
    acc_k = np.empty(0, dtype=np.int64)
    acc_v = np.empty(0, dtype=np.float64)
    for wi, m in zip(w, members):
        t = m if isinstance(m, LongTable) else read_long(m, fmt)
        if check:
            check_long(t, member_fmt, duplicates=False)  # duplicates are found below, on the sorted pairs
        gi = ids_v.codes_for(t.id_vocab)[t.ids]
        gk = keys_v.codes_for(t.key_vocab)[t.keys]
        k = _pair(gi, gk)
        del gi, gk
        order = np.argsort(k, kind="stable")
        k = k[order]
        if len(k) > 1 and (k[1:] == k[:-1]).any():  # names the pairs (in member codes: sort those)
            _no_duplicates(np.sort(t.pairs()), t, fmt)
        v = t.values[order] * wi
        del order, t
        acc_k, acc_v = _merge(acc_k, acc_v, k, v)
        del k, v
    return LongTable(
        ids=(acc_k >> 32).astype(np.int32),
        keys=(acc_k & 0xFFFFFFFF).astype(np.int32),
        values=acc_v,
        id_vocab=ids_v.values,
        key_vocab=keys_v.values,
        source="ensemble",
    )


def finish_long(table: LongTable, fmt: LongFormat) -> LongTable:
    """What gets written: at most `max_per_id` keys per id (the highest values), values rounded to `sig_figs`,
    and values that are not in the format's range after rounding dropped (e.g. a 0 when 0 is excluded)."""
    ids, keys, v = table.ids, table.keys, table.values
    if fmt.sig_figs is not None:
        v = round_sig(v, fmt.sig_figs)
    lo = fmt.value_range[0]
    keep = v >= lo if fmt.low_inclusive else v > lo
    if not keep.all():
        ids, keys, v = ids[keep], keys[keep], v[keep]
    if fmt.max_per_id is not None and len(ids):
        counts = np.bincount(ids)
        if counts.max() > fmt.max_per_id:
            lo, hi = fmt.value_range
            # one float64 key (id, then value descending) sorts faster than lexsort's two; exact while ids stay
            # below 2**24 (a 2**-29 step left for the value's part, far below 3 significant figures)
            if np.isfinite(lo) and np.isfinite(hi) and hi > lo and len(counts) < 2**24:
                order = np.argsort(ids + 0.5 * (hi - v) / (hi - lo), kind="stable")
            else:
                order = np.lexsort((-v, ids))
            sid = ids[order]
            first = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
            rank = np.arange(len(sid)) - np.repeat(first, np.diff(np.r_[first, len(sid)]))
            sel = np.sort(order[rank < fmt.max_per_id])  # back to pair order
            ids, keys, v = ids[sel], keys[sel], v[sel]
    return LongTable(ids, keys, v, table.id_vocab, table.key_vocab, source=table.source)


def write_long(table: LongTable, path: Path | str, fmt: LongFormat, *, overwrite: bool = False) -> Path:
    """Write (atomically) a finished table: `id<sep>key<sep>value` rows, a header only when the format has one."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise SubmissionError(f"{path}: already exists (pass overwrite=True / --overwrite to replace it)")
    out = pa.table(
        {
            fmt.id_col: pa.DictionaryArray.from_arrays(pa.array(table.ids, pa.int32()), table.id_vocab),
            fmt.key_col: pa.DictionaryArray.from_arrays(pa.array(table.keys, pa.int32()), table.key_vocab),
            fmt.value_col: pa.array(table.values, pa.float64()),
        }
    )
    with atomic_output(path) as f:
        if fmt.header:
            f.write((fmt.sep.join(fmt.columns) + "\n").encode())
        pacsv.write_csv(out, f, pacsv.WriteOptions(include_header=False, delimiter=fmt.sep, quoting_style="none"))
    return path


def ensemble_long(
    members: Sequence[Path | str | LongTable],
    out: Path | str,
    fmt: LongFormat,
    weights: Sequence[float] | np.ndarray | None = None,
    *,
    overwrite: bool = False,
) -> tuple[Path, LongTable]:
    """Average members, cap and round, check the result against the format, write it: (path, written table)."""
    table = finish_long(average_long(members, fmt, weights), fmt)
    table.source = str(out)
    check_long(table, fmt)  # never write a file that fails the format check
    return write_long(table, out, fmt, overwrite=overwrite), table


def write_long_text(rows: Sequence[tuple[str, str, float]], fmt: LongFormat) -> str:
    """Rows as the format's text (tests, small files)."""
    buf = io.StringIO()
    if fmt.header:
        buf.write(fmt.sep.join(fmt.columns) + "\n")
    for a, b, c in rows:
        buf.write(f"{a}{fmt.sep}{b}{fmt.sep}{c}\n")
    return buf.getvalue()
