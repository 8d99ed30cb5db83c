"""THE reader of BELKA's long parquet files (`train.parquet`, `test.parquet` as the competition ships them).

    reader = LongReader(path, labelled=True, max_length=142, on_unknown="error", vocab=[])
    with reader:
        for blocks in reader:            # one list per record batch
            for b in blocks:             # complete molecules, in file order
                b.tokens, b.bb, b.labels, b.ids

Used by both ways BELKA data reaches a model: the in-memory read of small/demo files (`task.py`) and the
streaming preparation of the full ~295M-row file into memory maps (`prepare.py`). One reader, so a file is
accepted or refused, and its molecules and building-block ids come out, the same way at both scales.

What it checks (`open_long`): the file exists and is parquet; the columns id, buildingblock{1,2,3}_smiles,
molecule_smiles, protein_name (and binds for train) are there with integer/string types. Per row: no
missing value, protein_name one of BRD4/HSA/sEH, binds 0 or 1, at most one row per (molecule, protein), a
SMILES the tokenizer accepts. Every refusal is a `LongFileError` naming the file, the file row, the row's
`id` and the offending value.

Behaviour (one rule for both scales):
  - Rows of one molecule must be adjacent (the competition files are molecule-major: BRD4, HSA, sEH rows of a
    molecule in a row). A molecule seen again after other molecules is refused, naming both row ids: a
    shuffled or concatenated file is a user error, and merging such rows cannot be done at full scale in
    flat memory (it would need a global index of 98M SMILES), so small files do not get a leniency the real
    ones cannot have. Within a record batch and across each batch boundary this is always checked;
    `task.py` also checks the whole (small) file.
  - A molecule may have rows for any subset of the three proteins (test.parquet pairs some molecules with
    only one or two): the missing cells are ABSENT. Every protein is read; an experiment that models a
    subset (`task.proteins`) selects columns afterwards (`Wide.select`).

Output per molecule: tokens (tokens.py), bb (3 ids into `vocab`, one vocabulary for the three positions;
new SMILES get ids in order of first appearance, molecule-major then column 1..3, so ids do not depend on
where batches were cut), labels (uint8, ABSENT=255 where there is no row or no label) and ids (the row `id`
of each (molecule, protein), -1 where absent), columns in PROTEINS order.

Performance: the next record batch is decoded in a background thread (`_Prefetch`; pyarrow releases the
GIL) while this one is tokenized; building blocks and protein names are read as dictionaries. See
prepare.py for the measured figures.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ...errors import DataError
from . import tokens as belka_tokens

PROTEINS = ("BRD4", "HSA", "sEH")
BB_COLUMNS = ("buildingblock1_smiles", "buildingblock2_smiles", "buildingblock3_smiles")
ABSENT = 255  # labels.u8 value of a cell with no label (the same byte as int8 -1)
SKIP_HINT = "on_unknown='skip' (an experiment's task.unknown_chars) drops unknown characters"


class LongFileError(DataError):
    """A bad row of a BELKA long file: names the file, the file row, the row id and the offending value."""

    def __init__(self, message: str, *, row_id: int | None = None, char: str | None = None):
        self.row_id, self.char = row_id, char
        super().__init__(message)


def required_columns(labelled: bool) -> list[str]:
    return ["id", *BB_COLUMNS, "molecule_smiles", "protein_name"] + (["binds"] if labelled else [])


def open_long(src: Path, labelled: bool) -> Any:
    """The parquet file opened for streaming (a pyarrow ParquetFile), after checking that it exists and has
    the leash-BELKA columns and types; DataError naming what is wrong."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not src.is_file():
        raise DataError(
            f"BELKA parquet {src} not found: download it with "
            "`kaggle competitions download -c leash-BELKA` and unzip it"
        )
    try:
        schema = pq.ParquetFile(src).schema_arrow
    except Exception as e:  # not parquet, truncated, ...
        raise DataError(f"{src}: cannot read as parquet ({type(e).__name__}: {e})") from None
    need = required_columns(labelled)
    missing = [c for c in need if c not in schema.names]
    if missing:
        raise DataError(
            f"{src}: missing column(s) {missing}; found {schema.names}. Expected the leash-BELKA "
            f"layout: {', '.join(need)}"
        )
    for c in need:
        t = schema.field(c).type
        value_t = t.value_type if pa.types.is_dictionary(t) else t
        if c in ("id", "binds"):
            ok = pa.types.is_integer(value_t) or (c == "binds" and pa.types.is_boolean(value_t))
            want = "an integer"
        else:
            ok = pa.types.is_string(value_t) or pa.types.is_large_string(value_t)
            want = "a string"
        if not ok:
            raise DataError(f"{src}: column '{c}' has type {t}, expected {want} column (leash-BELKA layout)")
    # Building blocks and protein names repeat a few thousand values: read them as dictionaries (no
    # per-row strings are materialised); molecule_smiles is read as plain strings.
    # pre_buffer=False: with pre-buffering (pyarrow's default) the reader caches every column chunk it has
    # read, for the life of the file object: allocations grow with the file (612 MiB of Arrow memory
    # after 10M molecules, so several GB at 98M); without it they stay ~40 MiB, and decoding is no slower.
    return pq.ParquetFile(src, read_dictionary=[*BB_COLUMNS, "protein_name"], pre_buffer=False)


@dataclass
class Block:
    """Complete molecules, in file order. `tokens` may be a view of a buffer the reader reuses two record
    batches later: copy it, or be done with it, before then."""

    tokens: np.ndarray  # (k, max_length) uint8
    bb: np.ndarray  # (k, 3) int32
    labels: np.ndarray  # (k, 3) uint8, ABSENT = no label
    ids: np.ndarray  # (k, 3) int64, -1 = no row
    smiles: Any  # pyarrow string array (k,): each molecule's SMILES
    rows: np.ndarray  # (k,) int64: file row of each molecule's first row

    def __len__(self) -> int:
        return len(self.bb)


@dataclass
class _Pending:
    """The last molecule of a batch, whose rows may continue in the next batch."""

    block: Block  # one molecule (its own copies)
    smiles: str


class LongReader:
    """Stream one long file as complete molecules (see the module doc). Iterating yields one list of Blocks
    per record batch (the last one also holds the file's last molecule). `vocab` (building-block SMILES,
    index = id) is extended in place. After each yielded list `rows_done` is the file row where the molecule
    still held back starts (every row before it belongs to a yielded molecule): a caller that stops there
    can resume with `start_row=rows_done` and the same vocab."""

    def __init__(
        self,
        src: str | Path,
        *,
        labelled: bool,
        max_length: int,
        on_unknown: str,
        vocab: list[str],
        batch_rows: int,
        start_row: int = 0,
    ):
        import pyarrow as pa

        if on_unknown not in ("error", "skip"):
            raise DataError(f"on_unknown must be 'error' or 'skip', got {on_unknown!r}")
        self.src = Path(src)
        self.pf = open_long(self.src, labelled)
        self.columns = required_columns(labelled)
        self.labelled, self.max_length, self.on_unknown = labelled, max_length, on_unknown
        self.batch_rows = batch_rows
        self.num_rows: int = self.pf.metadata.num_rows
        self.vocab = vocab
        self.vocab_index = {s: i for i, s in enumerate(vocab)}
        self.vocab_arr = pa.array(vocab, type=pa.string())  # vocab as Arrow, rebuilt when it grows
        self.prot_set = pa.array(PROTEINS)
        self.rows_done = start_row
        self.batch_row0 = start_row  # absolute file row of the current batch's first row
        self.skipped_chars = 0  # molecules with characters dropped under on_unknown="skip"
        self.done = False  # the whole file was read
        # two token buffers: a Block handed out may still be in use (e.g. being written by a thread) while the
        # next batch is tokenized into the other one
        self.token_bufs = [np.empty((0, max_length), dtype=np.uint8), np.empty((0, max_length), dtype=np.uint8)]
        self.cur = 0
        self.char_buf = np.empty(0, dtype=np.uint8)
        self.pending: _Pending | None = None
        self._batches: _Prefetch | None = None

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[list[Block]]:
        self._batches = _Prefetch(_iter_batches(self.pf, self.columns, self.batch_rows, self.rows_done))
        for batch in self._batches:
            if batch.num_rows:
                yield self.consume(batch)
        self.done = True
        if self.pending is not None:
            last, self.pending = self.pending.block, None
            self.rows_done = self.num_rows
            yield [last]
        self.rows_done = self.num_rows

    def close(self) -> None:
        if self._batches is not None:
            self._batches.close()
            self._batches = None

    def __enter__(self) -> LongReader:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def consume(self, batch: Any) -> list[Block]:
        """One record batch: every molecule complete in it; its last one is held back."""
        ids, smiles, prot, binds = self.read_columns(batch)
        starts, firsts, run_of_row, continues = self.molecule_runs(smiles, ids)
        n_runs = len(starts)
        tokens = self.tokenize(firsts, starts, ids)
        bb = self.bb_ids([batch.column(c) for c in BB_COLUMNS], starts, ids)
        labels, row_ids = self.cells(smiles, ids, prot, binds, run_of_row, n_runs)
        rows = self.batch_row0 + starts.astype(np.int64)
        out: list[Block] = []
        pending = self.pending
        if pending is not None:
            if continues:  # its rows continue here: merged into run 0
                p = pending.block
                both = np.flatnonzero((p.ids[0] >= 0) & (row_ids[0] >= 0))
                if both.size:
                    r = int(np.flatnonzero((run_of_row == 0) & (prot == both[0]))[0])
                    raise self.row_error(
                        r, ids, f"a second row for molecule {pending.smiles!r} and protein {PROTEINS[int(both[0])]!r}"
                    )
                seen = p.ids[0] >= 0
                labels[0, seen] = p.labels[0, seen]
                row_ids[0, seen] = p.ids[0, seen]
                rows[0] = p.rows[0]
            else:
                out.append(pending.block)
        last = n_runs - 1
        self.pending = _Pending(
            Block(
                tokens[last:].copy(),
                bb[last:].copy(),
                labels[last:].copy(),
                row_ids[last:].copy(),
                firsts.slice(last),
                rows[last:].copy(),
            ),
            firsts[last].as_py(),
        )
        if last:
            out.append(
                Block(tokens[:last], bb[:last], labels[:last], row_ids[:last], firsts.slice(0, last), rows[:last])
            )
            self.cur ^= 1
        self.rows_done = int(self.pending.block.rows[0])
        self.batch_row0 += batch.num_rows
        return out

    # ------------------------------------------------------------------ steps of one batch
    def row_error(self, r: int, ids: np.ndarray, what: str, char: str | None = None) -> LongFileError:
        """The error for row r of this batch: file, file row, row id, what is wrong (with the value)."""
        return LongFileError(
            f"{self.src}: row {self.batch_row0 + r} (id {ids[r]}): {what}", row_id=int(ids[r]), char=char
        )

    def read_columns(self, batch: Any) -> tuple[np.ndarray, Any, np.ndarray, np.ndarray | None]:
        """(row ids, molecule_smiles, protein index per row, binds as uint8 (train) or None), every value
        checked."""
        import pyarrow as pa
        import pyarrow.compute as pc

        idcol = batch.column("id")
        if idcol.null_count:
            r = int(np.flatnonzero(idcol.is_null().to_numpy(zero_copy_only=False))[0])
            raise LongFileError(f"{self.src}: row {self.batch_row0 + r}: missing id")
        ids = idcol.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        smiles = batch.column("molecule_smiles")
        if pa.types.is_dictionary(smiles.type):
            smiles = smiles.cast(pa.string())
        if smiles.null_count:
            r = int(np.flatnonzero(smiles.is_null().to_numpy(zero_copy_only=False))[0])
            raise self.row_error(r, ids, "missing molecule_smiles")
        pcol = batch.column("protein_name")
        if pa.types.is_dictionary(pcol.type):  # look up the (~3) dictionary entries, map rows in numpy
            pmap = (
                pc.fill_null(pc.index_in(pcol.dictionary, value_set=self.prot_set), -1)
                .to_numpy(zero_copy_only=False)
                .astype(np.int64)
            )
            prot = pmap[pcol.indices.fill_null(0).to_numpy(zero_copy_only=False)]
        else:
            prot = (
                pc.fill_null(pc.index_in(pcol, value_set=self.prot_set), -1)
                .to_numpy(zero_copy_only=False)
                .astype(np.int64)
            )
        if pcol.null_count:
            prot[pcol.is_null().to_numpy(zero_copy_only=False)] = -1
        if prot.min(initial=0) < 0:
            r = int(np.flatnonzero(prot < 0)[0])
            raise self.row_error(r, ids, f"protein_name {pcol[r].as_py()!r} is not one of {list(PROTEINS)}")
        binds = None
        if self.labelled:
            bcol = batch.column("binds")
            if bcol.null_count:
                r = int(np.flatnonzero(bcol.is_null().to_numpy(zero_copy_only=False))[0])
                raise self.row_error(r, ids, "missing binds")
            binds = bcol.to_numpy(zero_copy_only=False).astype(np.int64)
            bad = np.flatnonzero((binds != 0) & (binds != 1))
            if bad.size:
                r = int(bad[0])
                raise self.row_error(r, ids, f"binds={int(binds[r])}, expected 0 or 1")
            binds = binds.astype(np.uint8)
        return ids, smiles, prot, binds

    def molecule_runs(self, smiles: Any, ids: np.ndarray) -> tuple[np.ndarray, Any, np.ndarray, bool]:
        """Runs of equal molecule_smiles are molecules: (first row of each run, its SMILES, run index per row,
        whether run 0 continues the held-back molecule). A molecule seen again after others is refused."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n_b, pending = len(smiles), self.pending
        new_run = np.ones(n_b, dtype=bool)
        if n_b > 1:
            new_run[1:] = pc.not_equal(smiles.slice(1), smiles.slice(0, n_b - 1)).to_numpy(zero_copy_only=False)
        continues = pending is not None and smiles[0].as_py() == pending.smiles
        starts = np.flatnonzero(new_run)
        firsts = smiles.take(pa.array(starts))
        # len(unique) rather than count_distinct: 2.4 vs 10 ms per 44k strings (pyarrow 26)
        if len(pc.unique(firsts)) != len(starts):
            vc = pc.value_counts(firsts)
            dup = vc.field("values").filter(pc.greater(vc.field("counts"), 1))[0].as_py()
            where = np.flatnonzero(pc.equal(firsts, dup).to_numpy(zero_copy_only=False))
            raise self.not_adjacent(dup, int(ids[starts[where[0]]]), int(starts[where[1]]), ids)
        if pending is not None and not continues and pc.any(pc.equal(firsts, pending.smiles)).as_py():
            r = int(starts[int(np.flatnonzero(pc.equal(firsts, pending.smiles).to_numpy(zero_copy_only=False))[0])])
            raise self.not_adjacent(pending.smiles, int(pending.block.ids[0].max()), r, ids)
        return starts, firsts, np.cumsum(new_run) - 1, continues

    def not_adjacent(self, smiles: str, first_id: int, r: int, ids: np.ndarray) -> LongFileError:
        return self.row_error(r, ids, not_adjacent_message(smiles, first_id))

    def tokenize(self, firsts: Any, starts: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """(n_runs, max_length) tokens of each molecule, into the reused buffer of this batch."""
        n_runs, max_length = len(starts), self.max_length
        # buffers reused batch after batch: no per-batch allocation and page faults
        token_buf = self.token_bufs[self.cur]
        if len(token_buf) < n_runs:
            token_buf = self.token_bufs[self.cur] = np.empty(
                (max(n_runs, 2 * len(token_buf)), max_length), dtype=np.uint8
            )
        chars = firsts.buffers()[2].size if firsts.buffers()[2] is not None else 0
        if len(self.char_buf) < chars + max_length + 1:
            self.char_buf = np.empty(max(chars + max_length + 1, 2 * len(self.char_buf)), dtype=np.uint8)
        try:
            tokens = belka_tokens.encode(
                firsts, max_length, on_unknown=self.on_unknown, out=token_buf, scratch=self.char_buf
            )
        except belka_tokens.TokenizeError as e:
            what = str(e).split(": ", 1)[1]
            hint = f"; {SKIP_HINT}" if what.startswith("unknown") else f" (max_length={max_length})"
            raise self.row_error(int(starts[e.row]), ids, what + hint, char=e.char) from None
        if self.on_unknown == "skip":
            self.skipped_chars += _count_unknown(firsts)
        return tokens

    def bb_ids(self, cols: list, starts: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """(n_runs, 3) global vocabulary ids of the building blocks of each run (rows `starts` of the
        batch's columns). Each column is dictionary-encoded (per batch): its few hundred dictionary entries
        are looked up in the vocabulary with one `index_in`, rows map through numpy. New SMILES get ids in
        order of first appearance, molecule-major then column 1..3, so ids do not depend on where batches
        (or an interrupted run) were cut."""
        import pyarrow as pa
        import pyarrow.compute as pc

        dicts, indices, maps, cands = [], [], [], []
        for c, col in enumerate(cols):
            if not pa.types.is_dictionary(col.type):
                col = pc.dictionary_encode(col)
            if col.null_count:
                r = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
                raise self.row_error(r, ids, f"missing {BB_COLUMNS[c]}")
            idx = col.indices.to_numpy(zero_copy_only=False)[starts]
            mapping = (
                pc.fill_null(pc.index_in(col.dictionary, value_set=self.vocab_arr), -1)
                .to_numpy(zero_copy_only=False)
                .astype(np.int32)
            )
            unseen = np.flatnonzero(mapping < 0)
            if unseen.size:  # entries not in the vocabulary yet: those used by a run are candidates
                first = np.full(len(mapping), -1, dtype=np.int64)
                first[idx[::-1]] = np.arange(len(idx) - 1, -1, -1)  # smallest run index per entry
                for j in unseen[first[unseen] >= 0]:
                    cands.append((int(first[j]), c, int(j)))
            dicts.append(col.dictionary)
            indices.append(idx)
            maps.append(mapping)
        for _, c, j in sorted(cands):
            s_ = dicts[c][j].as_py()
            if s_ not in self.vocab_index:
                self.vocab_index[s_] = len(self.vocab)
                self.vocab.append(s_)
            maps[c][j] = self.vocab_index[s_]
        if cands:
            self.vocab_arr = pa.array(self.vocab, type=pa.string())
        out = np.empty((len(starts), 3), dtype=np.int32)
        for c in range(3):
            out[:, c] = maps[c][indices[c]]
        return out

    def cells(
        self,
        smiles: Any,
        ids: np.ndarray,
        prot: np.ndarray,
        binds: np.ndarray | None,
        run_of_row: np.ndarray,
        n_runs: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(labels, row ids), each (n_runs, 3): one cell per (molecule, protein); a second row for a cell is
        refused."""
        key = run_of_row * 3 + prot
        counts = np.bincount(key, minlength=n_runs * 3)
        if counts.max(initial=0) > 1:
            k = int(np.flatnonzero(counts > 1)[0])
            r = int(np.flatnonzero(key == k)[1])
            raise self.row_error(
                r, ids, f"a second row for molecule {smiles[r].as_py()!r} and protein {PROTEINS[k % 3]!r}"
            )
        labels = np.full((n_runs, 3), ABSENT, dtype=np.uint8)
        if binds is not None:
            labels.reshape(-1)[key] = binds
        row_ids = np.full((n_runs, 3), -1, dtype=np.int64)
        row_ids.reshape(-1)[key] = ids
        return labels, row_ids


def not_adjacent_message(smiles: str, first_id: int) -> str:
    return (
        f"molecule {smiles!r} (first at row id {first_id}) appears again after other molecules; rows of "
        "one molecule must be adjacent, as in the competition files (sort the file by molecule_smiles)"
    )


def _iter_batches(pf: Any, columns: list[str], batch_rows: int, skip_rows: int) -> Iterator[Any]:
    """Record batches from row `skip_rows` on: starts at the row group holding it and slices the rest."""
    md = pf.metadata
    g, start = 0, 0
    while g < md.num_row_groups and start + md.row_group(g).num_rows <= skip_rows:
        start += md.row_group(g).num_rows
        g += 1
    if g >= md.num_row_groups:
        return
    skip = skip_rows - start
    for batch in pf.iter_batches(
        batch_size=batch_rows, row_groups=range(g, md.num_row_groups), columns=columns, use_threads=True
    ):
        if skip >= batch.num_rows:
            skip -= batch.num_rows
            continue
        if skip:
            batch, skip = batch.slice(skip), 0
        yield batch


class _Prefetch:
    """Iterate `it` in a background thread, `depth` items ahead. Parquet decoding (about a third of
    prepare's time) releases the GIL, so the next record batch is decoded on the second core while this
    one is tokenized and written. Errors raised by `it` are re-raised by the consumer; `close()` stops
    the thread (after at most the item it is producing)."""

    _END = object()

    def __init__(self, it: Iterator[Any], depth: int = 2):
        self._q: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._it = it
        self._t = threading.Thread(target=self._run, name="belka-read-decode", daemon=True)
        self._t.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._it:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as e:  # handed to the consumer
            self._put(e)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._q.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._t.join()
        close = getattr(self._it, "close", None)
        if close is not None:
            close()


def _count_unknown(firsts: Any) -> int:
    import pyarrow.compute as pc

    pattern = "[^" + "".join("\\" + c if c in "[]\\^-" else c for c in belka_tokens.SYMBOLS) + "]"
    return int(pc.sum(pc.match_substring_regex(firsts, pattern)).as_py() or 0)
