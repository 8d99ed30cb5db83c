"""Prepare BELKA's full long parquet (~295M rows) as fixed-width arrays for training: streaming, resumable.

    prepare("train.parquet", "data/belka/train", split="train")
    prepare("test.parquet",  "data/belka/test",  split="test", base_vocab="data/belka/train")
    prepare_dir("raw/", "data/belka")      # both, plus data/belka/meta.json (what BelkaTask looks for)
    python -m molremote.tasks.belka.prepare raw/ data/belka

The parquet is read in record batches (pyarrow), never whole. Rows of one molecule are adjacent in the
real files (molecule-major; BRD4, HSA, sEH); this is checked within every batch and across each batch
boundary (a molecule seen again after other molecules is refused, naming both row ids; one recurring
several batches later would need a global index of 98M SMILES and is not looked for), and a molecule whose
rows straddle a batch boundary is held back and finished with the next batch. Output folder (raw little-endian matrices, `np.memmap`-able):

    tokens.u8   (n, max_length) uint8   character tokens (tokens.py), PAD 0
    labels.u8   (n, 3) uint8            binds per protein; 255 = no label (no such row; every cell of test)
    ids.i64     (n, 3) int64            the row `id` of each (molecule, protein); -1 = no such row. Test:
                                        the submission's row-id -> (molecule, protein) mapping
    bb.i32      (n, 3) int32            building blocks 1..3 as ids into bb_vocab.json (one shared vocabulary)
    bb_vocab.json                       building-block SMILES, index = id
    meta.json                           written last: its presence means the folder is complete

Resumable: `progress.json` records the rows consumed, molecules written, the vocabulary and counts, and is
rewritten (after an fdatasync of the arrays) every `checkpoint_s` seconds or 256 MiB of output (in the
background) and at the end; a rerun with the
same input and parameters continues from it (it re-reads from the row group holding the first row not yet
consumed). Arrays are preallocated from the parquet metadata row count (an upper bound on molecules; the
files are sparse until written) and truncated to the molecule count at the end.

Writes go through `os.pwrite`, not a writable memmap: pages written through a shared mapping stay in the
process's resident set, and this must run in flat memory over a 14 GB output.

Three threads: the next record batch is decoded while this one is tokenized, and its rows are written (and
checkpoints synced) while the next is tokenized; pyarrow, numpy and os.pwrite/fdatasync release the GIL.
On 2 cores this took 10M generated molecules from 0.67-0.74M to 1.37-1.78M molecules/s
(benchmarks/belka_tokenize.py --baseline).

Unknown characters: refused with the row id and character (policy "error"), or dropped to PAD (policy
"skip", the task's `unknown_chars`; the count of affected molecules is recorded in meta.json).
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...errors import DataError
from ...fsutil import write_json, write_text
from . import tokens as belka_tokens

FORMAT = "molremote-belka-prepared"
VERSION = 1
PROTEINS = ("BRD4", "HSA", "sEH")
ABSENT = 255
BB_COLUMNS = ("buildingblock1_smiles", "buildingblock2_smiles", "buildingblock3_smiles")
# Default record batch: 131,072 rows (~44k molecules). Measured on 10M generated molecules (2 cores,
# decode/write threads): 256k-row batches 1.23-1.30M molecules/s at 670 MiB peak RSS, 128k 1.33-1.45M/s
# at 500 MiB, 64k 1.37-1.41M/s at 400 MiB: smaller batches stay in cache, larger ones only add memory.
BATCH_ROWS = 1 << 17
# Checkpoint (fdatasync + progress.json, in a background thread) after this many bytes of output, besides
# every checkpoint_s: the disk then writes while later batches are computed, instead of all at the end
# (10M molecules are 1.5 GB of output; this machine's disk syncs ~420 MB/s).
CHECKPOINT_BYTES = 256 << 20


class PrepareError(DataError):
    """Bad input row: names the file, the row id and the offending value."""

    def __init__(self, message: str, *, row_id: int | None = None, char: str | None = None):
        self.row_id, self.char = row_id, char
        super().__init__(message)


# ------------------------------------------------------------------------------------------ file layout
def array_specs(split: str, n: int, n_rows: int, max_length: int) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (numpy dtype, shape) of the arrays in a prepared folder."""
    return {"tokens.u8": ("uint8", (n, max_length)), "labels.u8": ("uint8", (n, 3)), "ids.i64": ("int64", (n, 3)),
            "bb.i32": ("int32", (n, 3))}


def _atomic_json(path: Path, obj: Any) -> None:
    write_json(path, obj, indent=1)


def _source_info(path: Path, pf) -> dict[str, Any]:
    md = pf.metadata
    return {"path": str(path.resolve()), "size": path.stat().st_size, "num_rows": md.num_rows,
            "num_row_groups": md.num_row_groups, "columns": pf.schema_arrow.names}


# ------------------------------------------------------------------------------------------ state
@dataclass
class _Pending:
    """The last molecule of a batch, whose rows may continue in the next batch."""

    smiles: str
    row_start: int  # absolute file row of its first row
    tokens: np.ndarray  # (max_length,)
    bb: np.ndarray  # (3,)
    labels: np.ndarray  # (3,)
    ids: np.ndarray  # (3,)
    proteins: np.ndarray  # proteins already seen


@dataclass
class _State:
    rows_done: int = 0  # file rows consumed: every row before this belongs to a written molecule
    n: int = 0  # molecules written
    batches: int = 0
    vocab: list[str] = field(default_factory=list)
    positives: list[int] = field(default_factory=lambda: [0, 0, 0])
    pairs: list[int] = field(default_factory=lambda: [0, 0, 0])
    skipped_chars: int = 0  # molecules with characters dropped under on_unknown="skip"


class _Writer:
    """Fixed-width rows written at their offsets with os.pwrite into preallocated (sparse) files.

    `submit` hands one batch of rows to a background thread (os.pwrite releases the GIL: copying ~8 MB per
    batch into the page cache overlaps with tokenizing the next batch). At most one batch is in flight:
    `submit` first waits for the previous one, so a caller may reuse the buffers of batch k once it has
    submitted batch k+1 (prepare alternates two token buffers). Errors surface at the next submit/flush.
    `checkpoint` makes everything submitted so far durable (fdatasync), then commits (progress.json), in a
    third thread unless asked to wait."""

    def __init__(self, out: Path, specs: dict[str, tuple[str, tuple[int, ...]]], fresh: bool):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="belka-prepare-write")
        self._sync_pool = ThreadPoolExecutor(1, thread_name_prefix="belka-prepare-sync")
        self._last = self._ckpt = None
        self.unsynced = 0  # bytes written since the last checkpoint began
        self.fds: dict[str, int] = {}
        self.row_bytes: dict[str, int] = {}
        for name, (dtype, shape) in specs.items():
            path = out / name
            fd = os.open(path, os.O_RDWR | os.O_CREAT | (os.O_TRUNC if fresh else 0), 0o644)
            size = int(np.prod(shape)) * np.dtype(dtype).itemsize
            if fresh or os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)  # sparse: no blocks used until written
            self.fds[name] = fd
            self.row_bytes[name] = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize

    def write(self, name: str, row: int, arr: np.ndarray) -> None:
        buf = memoryview(np.ascontiguousarray(arr)).cast("B")
        off = row * self.row_bytes[name]
        while buf:
            k = os.pwrite(self.fds[name], buf, off)
            self.unsynced += k
            buf, off = buf[k:], off + k

    def _write_all(self, row: int, arrays: dict[str, np.ndarray]) -> None:
        for name, arr in arrays.items():
            self.write(name, row, arr)

    def submit(self, row: int, arrays: dict[str, np.ndarray]) -> None:
        """Write `arrays` (name -> rows) from `row` on, in the background; the arrays must stay unchanged
        until the next submit or flush returns."""
        self.flush()
        self._last = self._pool.submit(self._write_all, row, arrays)

    def flush(self) -> None:
        if self._last is not None:
            last, self._last = self._last, None
            last.result()

    def checkpoint(self, commit, wait: bool = False) -> None:
        """fdatasync every row submitted so far, then call `commit()`; in the background unless `wait`
        (one checkpoint at a time, in order: this first waits for the previous one)."""
        self.flush()
        self.wait_checkpoint()
        self.unsynced = 0
        fds = list(self.fds.values())

        def job() -> None:
            for fd in fds:
                os.fdatasync(fd)
            commit()

        if wait:
            job()
        else:
            self._ckpt = self._sync_pool.submit(job)

    def wait_checkpoint(self) -> None:
        if self._ckpt is not None:
            ckpt, self._ckpt = self._ckpt, None
            ckpt.result()

    def truncate(self, sizes: dict[str, int]) -> None:
        self.flush()
        self.wait_checkpoint()
        for name, rows in sizes.items():
            os.ftruncate(self.fds[name], rows * self.row_bytes[name])

    def close(self) -> None:
        try:
            for f in (self._last, self._ckpt):
                if f is not None:
                    f.exception()  # wait; an error is already being raised if the caller is closing after one
        finally:
            self._pool.shutdown(wait=True)
            self._sync_pool.shutdown(wait=True)
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}


# ------------------------------------------------------------------------------------------ prepare
def prepare(input_parquet: str | Path, out_dir: str | Path, split: str = "train", *,
            batch_rows: int = BATCH_ROWS, max_length: int = 142, proteins: Sequence[str] = PROTEINS,
            on_unknown: str = "error", base_vocab: str | Path | Sequence[str] | None = None,
            progress: bool = True, checkpoint_s: float = 10.0, max_batches: int | None = None,
            restart: bool = False) -> dict[str, Any]:
    """Prepare one split. Returns meta.json's content; with `max_batches` (a time box, and how the tests
    interrupt it) it may return early with {"status": "incomplete", ...}: call again to continue.

    `base_vocab`: building-block vocabulary to extend (a prepared folder or a list of SMILES), so that test
    building blocks get the same ids as in train and unseen ones are recognisable (id >= len(base)).

    Steps: check the arguments, open the parquet (`_open_parquet`), return an existing complete result
    (`_finished_meta`), start or resume the state (`_start_state`), then stream the batches (`_Preparer.run`).
    """
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    if on_unknown not in ("error", "skip"):
        raise DataError(f"on_unknown must be 'error' or 'skip', got {on_unknown!r}")
    src, out, proteins = Path(input_parquet), Path(out_dir), list(proteins)
    pf, columns = _open_parquet(src, split, proteins)
    source = _source_info(src, pf)
    params = {"split": split, "max_length": max_length, "proteins": proteins, "on_unknown": on_unknown}
    out.mkdir(parents=True, exist_ok=True)
    meta = _finished_meta(out, source, params, restart)
    if meta is not None:
        return meta
    state, fresh, n_base_vocab = _start_state(out, source, params, base_vocab, restart)
    run = _Preparer(src, out, pf, columns, split, source, params, state, fresh, n_base_vocab, batch_rows=batch_rows,
                    max_length=max_length, proteins=proteins, on_unknown=on_unknown, checkpoint_s=checkpoint_s)
    return run.run(progress=progress, max_batches=max_batches)


def _open_parquet(src: Path, split: str, proteins: list[str]) -> tuple[Any, list[str]]:
    """(the parquet file opened for streaming, the columns to read); DataError naming what is wrong."""
    import pyarrow.parquet as pq

    if not src.is_file():
        raise DataError(f"BELKA parquet {src} not found: download it with "
                        "`kaggle competitions download -c leash-BELKA` and unzip it")
    try:
        pf = pq.ParquetFile(src)
    except Exception as e:
        raise DataError(f"{src}: not a readable parquet file ({e})") from None
    if len(proteins) != 3:
        raise DataError(f"BELKA has 3 proteins, got {proteins!r}")
    required = ["id", *BB_COLUMNS, "molecule_smiles", "protein_name"] + (["binds"] if split == "train" else [])
    missing = [c for c in required if c not in pf.schema_arrow.names]
    if missing:
        raise DataError(f"{src}: missing column(s) {', '.join(missing)} for split {split!r} "
                        f"(columns: {', '.join(pf.schema_arrow.names)})")
    # Building blocks and protein names repeat a few thousand values: read them as dictionaries (no
    # per-row strings are materialised); molecule_smiles is read as plain strings.
    # pre_buffer=False: with pre-buffering (pyarrow's default) the reader caches every column chunk it has
    # read, for the life of the file object: allocations grow with the file (612 MiB of Arrow memory
    # after 10M molecules, so several GB at 98M); without it they stay ~40 MiB, and decoding is no slower.
    return pq.ParquetFile(src, read_dictionary=[*BB_COLUMNS, "protein_name"], pre_buffer=False), required


def _finished_meta(out: Path, source: dict[str, Any], params: dict[str, Any], restart: bool) -> dict | None:
    """meta.json of a complete preparation of the same input and parameters (None: prepare); DataError when
    the folder holds another one."""
    meta_path = out / "meta.json"
    if not meta_path.exists() or restart:
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("source", {}).get("size") == source["size"] and meta.get("params") == params:
        return meta  # already complete
    raise DataError(f"{out} already holds a prepared BELKA {meta.get('split')!r} split from "
                    f"{meta.get('source', {}).get('path')} with other parameters; use another folder or restart=True")


def _start_state(out: Path, source: dict[str, Any], params: dict[str, Any],
                 base_vocab: str | Path | Sequence[str] | None, restart: bool) -> tuple[_State, bool, int]:
    """(state, fresh, size of the base vocabulary): resumed from progress.json when it belongs to this input
    and these parameters, else new (seeded with the base vocabulary)."""
    meta_path, prog_path = out / "meta.json", out / "progress.json"
    state, fresh = _State(), True
    if prog_path.exists() and not restart:
        prog = json.loads(prog_path.read_text())
        if prog.get("source", {}).get("size") != source["size"] or prog.get("source", {}).get("num_rows") != \
                source["num_rows"] or prog.get("params") != params:
            raise DataError(f"{prog_path} belongs to another input or parameters "
                            f"({prog.get('source', {}).get('path')}, {prog.get('params')}); use restart=True")
        state, fresh = _State(**prog["state"]), False
    elif base_vocab is not None:
        state.vocab = _load_vocab(base_vocab)
    n_base_vocab = len(_load_vocab(base_vocab)) if base_vocab is not None else 0
    if restart:
        meta_path.unlink(missing_ok=True)
    return state, fresh, n_base_vocab


class _Preparer:
    """One split's streaming pass: per record batch, read and check the columns, find the molecules (runs of
    equal SMILES), tokenize, map building blocks, fill the (molecule, protein) cells, join the molecule held
    back from the previous batch, write; checkpoint now and then; at the end truncate and write meta.json."""

    def __init__(self, src: Path, out: Path, pf: Any, columns: list[str], split: str, source: dict[str, Any],
                 params: dict[str, Any], state: _State, fresh: bool, n_base_vocab: int, *, batch_rows: int,
                 max_length: int, proteins: list[str], on_unknown: str, checkpoint_s: float):
        import pyarrow as pa

        self.src, self.out, self.pf, self.columns, self.split = src, out, pf, columns, split
        self.source, self.params, self.state, self.n_base_vocab = source, params, state, n_base_vocab
        self.batch_rows, self.max_length, self.proteins = batch_rows, max_length, proteins
        self.on_unknown, self.checkpoint_s = on_unknown, checkpoint_s
        self.meta_path, self.prog_path = out / "meta.json", out / "progress.json"
        self.n_rows = source["num_rows"]
        self.specs = array_specs(split, self.n_rows, self.n_rows, max_length)  # capacity: <= one molecule per row
        self.writer = _Writer(out, self.specs, fresh)
        self.vocab_index = {s: i for i, s in enumerate(state.vocab)}
        self.vocab_arr = pa.array(state.vocab, type=pa.string())  # state.vocab as Arrow, rebuilt when it grows
        self.prot_set = pa.array(proteins)
        # two token buffers: after rows of token_bufs[cur] are submitted to the writer thread (which may still
        # be writing them while the next batch is tokenized), the next batch uses the other one
        self.token_bufs = [np.empty((0, max_length), dtype=np.uint8), np.empty((0, max_length), dtype=np.uint8)]
        self.cur = 0
        self.char_buf = np.empty(0, dtype=np.uint8)
        self.pending: _Pending | None = None
        self.batch_row0 = state.rows_done  # absolute row of the current batch's first row

    # ------------------------------------------------------------------ the pass
    def run(self, *, progress: bool, max_batches: int | None) -> dict[str, Any]:
        state = self.state
        t_last = time.monotonic()
        bar = _progress_bar(progress, self.n_rows, state.rows_done, f"prepare {self.split}")
        batches = None
        try:
            batches = _Prefetch(_iter_batches(self.pf, self.columns, self.batch_rows, state.rows_done))
            for batch in batches:
                if max_batches is not None and state.batches >= max_batches:
                    break
                self.consume(batch)
                bar.update(batch.num_rows)
                if time.monotonic() - t_last > self.checkpoint_s or self.writer.unsynced >= CHECKPOINT_BYTES:
                    self.save_progress(wait=False)
                    t_last = time.monotonic()
            else:  # the whole file was read
                return self.finish()
            self.save_progress()
            return {"status": "incomplete", "rows_done": state.rows_done, "molecules": state.n,
                    "batches": state.batches}
        finally:
            if batches is not None:
                batches.close()
            bar.close()
            self.writer.close()

    def consume(self, batch: Any) -> None:
        """One record batch: every molecule complete in it is written; its last one is held back."""
        state = self.state
        n_b = batch.num_rows
        ids, smiles, prot, binds = self.read_columns(batch)
        starts, firsts, run_of_row, continues = self.molecule_runs(smiles, ids)
        n_runs = len(starts)
        tokens = self.tokenize(firsts, starts, ids)
        bb = self.bb_ids([batch.column(c) for c in BB_COLUMNS], starts)
        labels, row_ids = self.cells(smiles, ids, prot, binds, run_of_row, n_runs)
        base, run_start_row = self.join_pending(continues, labels, row_ids, prot, run_of_row, ids)

        # hold back the last run: its rows may continue in the next batch
        last = n_runs - 1
        self.pending = _Pending(smiles=firsts[last].as_py(),
                                row_start=run_start_row if last == 0 else self.batch_row0 + int(starts[last]),
                                tokens=tokens[last].copy(), bb=bb[last].copy(), labels=labels[last].copy(),
                                ids=row_ids[last].copy(), proteins=np.flatnonzero(row_ids[last] >= 0))
        if last:
            self.emit(base, tokens[:last], bb[:last], labels[:last], row_ids[:last])
            self.cur ^= 1
            state.n = base + last
        state.rows_done = self.pending.row_start
        self.batch_row0 += n_b
        state.batches += 1

    def finish(self) -> dict[str, Any]:
        """After the last batch: write the held-back molecule, truncate the arrays, write meta.json."""
        state, pending = self.state, self.pending
        if pending is not None:
            self.emit(state.n, pending.tokens[None], pending.bb[None], pending.labels[None], pending.ids[None])
            state.n += 1
            state.rows_done = self.n_rows
        if state.rows_done != self.n_rows and self.n_rows:
            raise DataError(f"{self.src}: read {state.rows_done} rows, metadata says {self.n_rows}")  # pragma: no cover
        n = state.n
        self.writer.truncate({name: n for name in self.specs})
        self.save_progress()
        meta = _meta(self.split, n, self.n_rows, self.max_length, self.proteins, self.source, self.params, state,
                     self.n_base_vocab)
        _atomic_json(self.out / "bb_vocab.json", state.vocab)
        _atomic_json(self.meta_path, meta)
        self.prog_path.unlink()
        return meta

    # ------------------------------------------------------------------ steps of one batch
    def read_columns(self, batch: Any) -> tuple[np.ndarray, Any, np.ndarray, np.ndarray | None]:
        """(row ids, molecule_smiles, protein index per row, binds as uint8 (train) or None), every value
        checked: a PrepareError names the row id and the value."""
        import pyarrow as pa
        import pyarrow.compute as pc

        src, proteins = self.src, self.proteins
        smiles = batch.column("molecule_smiles")
        if pa.types.is_dictionary(smiles.type):
            smiles = smiles.cast(pa.string())
        ids = batch.column("id").to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        if smiles.null_count:
            r = int(np.flatnonzero(smiles.is_null().to_numpy(zero_copy_only=False))[0])
            raise PrepareError(f"{src}: row id {ids[r]}: missing molecule_smiles", row_id=int(ids[r]))
        pcol = batch.column("protein_name")
        if pa.types.is_dictionary(pcol.type):  # look up the (~3) dictionary entries, map rows in numpy
            pmap = pc.fill_null(pc.index_in(pcol.dictionary, value_set=self.prot_set), -1).to_numpy(
                zero_copy_only=False).astype(np.int64)
            prot = pmap[pcol.indices.to_numpy(zero_copy_only=False)]
        else:
            prot = pc.fill_null(pc.index_in(pcol, value_set=self.prot_set), -1).to_numpy(zero_copy_only=False)
        if pcol.null_count:
            prot[pcol.is_null().to_numpy(zero_copy_only=False)] = -1
        if prot.min(initial=0) < 0:
            r = int(np.flatnonzero(prot < 0)[0])
            raise PrepareError(f"{src}: row id {ids[r]}: unknown protein_name {pcol[r].as_py()!r} "
                               f"(expected one of {proteins})", row_id=int(ids[r]))
        prot = prot.astype(np.int64, copy=False)
        binds = None
        if self.split == "train":
            bcol = batch.column("binds")
            if bcol.null_count:
                r = int(np.flatnonzero(bcol.is_null().to_numpy(zero_copy_only=False))[0])
                raise PrepareError(f"{src}: row id {ids[r]}: missing binds", row_id=int(ids[r]))
            binds = bcol.to_numpy(zero_copy_only=False)
            bad = np.flatnonzero((binds != 0) & (binds != 1))
            if bad.size:
                r = int(bad[0])
                raise PrepareError(f"{src}: row id {ids[r]}: binds must be 0 or 1, got {binds[r]!r}",
                                   row_id=int(ids[r]))
            binds = binds.astype(np.uint8)
        return ids, smiles, prot, binds

    def molecule_runs(self, smiles: Any, ids: np.ndarray) -> tuple[np.ndarray, Any, np.ndarray, bool]:
        """Runs of equal molecule_smiles are molecules: (first row of each run, its SMILES, run index per row,
        whether run 0 continues the held-back molecule). A molecule seen again after others is refused."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n_b, pending, src = len(smiles), self.pending, self.src
        new_run = np.ones(n_b, dtype=bool)
        if n_b > 1:
            new_run[1:] = pc.not_equal(smiles.slice(1), smiles.slice(0, n_b - 1)).to_numpy(zero_copy_only=False)
        continues = pending is not None and smiles[0].as_py() == pending.smiles
        starts = np.flatnonzero(new_run)
        n_runs = len(starts)
        firsts = smiles.take(pa.array(starts))
        # len(unique) rather than count_distinct: 2.4 vs 10 ms per 44k strings (pyarrow 26)
        if len(pc.unique(firsts)) != n_runs:
            _raise_not_adjacent(src, firsts, starts, ids)
        if pending is not None and not continues and n_runs and pc.any(pc.equal(firsts, pending.smiles)).as_py():
            r = int(starts[int(np.flatnonzero(pc.equal(firsts, pending.smiles).to_numpy(zero_copy_only=False))[0])])
            raise PrepareError(f"{src}: row id {ids[r]}: molecule {pending.smiles!r} appears again after other "
                               f"molecules (first at row id {pending.ids.max()}); rows of one molecule must be "
                               "adjacent", row_id=int(ids[r]))
        return starts, firsts, np.cumsum(new_run) - 1, continues

    def tokenize(self, firsts: Any, starts: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """(n_runs, max_length) tokens of each molecule, into the reused buffer of this batch."""
        n_runs, max_length = len(starts), self.max_length
        try:
            # buffers reused batch after batch: no per-batch allocation and page faults
            token_buf = self.token_bufs[self.cur]
            if len(token_buf) < n_runs:
                token_buf = self.token_bufs[self.cur] = np.empty((max(n_runs, 2 * len(token_buf)), max_length),
                                                                 dtype=np.uint8)
            chars = firsts.buffers()[2].size if firsts.buffers()[2] is not None else 0
            if len(self.char_buf) < chars + max_length + 1:
                self.char_buf = np.empty(max(chars + max_length + 1, 2 * len(self.char_buf)), dtype=np.uint8)
            tokens = belka_tokens.encode(firsts, max_length, on_unknown=self.on_unknown, out=token_buf,
                                         scratch=self.char_buf)
        except belka_tokens.TokenizeError as e:
            r = int(starts[e.row])
            raise PrepareError(f"{self.src}: row id {ids[r]} (file row {self.batch_row0 + r}): "
                               f"{str(e).split(': ', 1)[1]}"
                               + ("; set on_unknown='skip' (task.unknown_chars) to drop unknown characters"
                                  if "unknown" in str(e) else ""), row_id=int(ids[r]), char=e.char) from None
        if self.on_unknown == "skip":
            self.state.skipped_chars += _count_unknown(firsts)
        return tokens

    def bb_ids(self, cols: list, starts: np.ndarray) -> np.ndarray:
        """(n_runs, 3) global vocabulary ids of the building blocks of each run (rows `starts` of the
        batch's columns). Each column is dictionary-encoded (per batch): its few hundred dictionary entries
        are looked up in the vocabulary with one `index_in`, rows map through numpy. New SMILES get ids in
        order of first appearance, molecule-major then column 1..3, so ids do not depend on where batches
        (or an interrupted run) were cut."""
        import pyarrow as pa
        import pyarrow.compute as pc

        state = self.state
        dicts, indices, maps, cands = [], [], [], []
        for c, col in enumerate(cols):
            if not pa.types.is_dictionary(col.type):
                col = pc.dictionary_encode(col)
            if col.null_count:
                raise PrepareError(f"{self.src}: missing {BB_COLUMNS[c]}")
            idx = col.indices.to_numpy(zero_copy_only=False)[starts]
            mapping = pc.fill_null(pc.index_in(col.dictionary, value_set=self.vocab_arr), -1).to_numpy(
                zero_copy_only=False).astype(np.int32)
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
                self.vocab_index[s_] = len(state.vocab)
                state.vocab.append(s_)
            maps[c][j] = self.vocab_index[s_]
        if cands:
            self.vocab_arr = pa.array(state.vocab, type=pa.string())
        out = np.empty((len(starts), 3), dtype=np.int32)
        for c in range(3):
            out[:, c] = maps[c][indices[c]]
        return out

    def cells(self, smiles: Any, ids: np.ndarray, prot: np.ndarray, binds: np.ndarray | None,
              run_of_row: np.ndarray, n_runs: int) -> tuple[np.ndarray, np.ndarray]:
        """(labels, row ids), each (n_runs, 3): one cell per (molecule, protein); a second row for a cell is
        refused."""
        key = run_of_row * 3 + prot
        counts = np.bincount(key, minlength=n_runs * 3)
        if counts.max(initial=0) > 1:
            k = int(np.flatnonzero(counts > 1)[0])
            r = int(np.flatnonzero(key == k)[1])
            raise PrepareError(f"{self.src}: row id {ids[r]}: molecule {smiles[r].as_py()!r} has a second row for "
                               f"protein {self.proteins[k % 3]}", row_id=int(ids[r]))
        labels = np.full((n_runs, 3), ABSENT, dtype=np.uint8)
        if binds is not None:
            labels.reshape(-1)[key] = binds
        row_ids = np.full((n_runs, 3), -1, dtype=np.int64)
        row_ids.reshape(-1)[key] = ids
        return labels, row_ids

    def join_pending(self, continues: bool, labels: np.ndarray, row_ids: np.ndarray, prot: np.ndarray,
                     run_of_row: np.ndarray, ids: np.ndarray) -> tuple[int, int]:
        """The molecule held back from the previous batch: merged into run 0 (its rows continue here) or
        written on its own. Returns (row of run 0 in the output, file row where run 0 starts)."""
        state, pending = self.state, self.pending
        base = state.n
        if pending is None:
            return base, self.batch_row0
        if continues:
            both = np.intersect1d(pending.proteins, prot[run_of_row == 0])
            if both.size:
                r = int(np.flatnonzero((run_of_row == 0) & (prot == both[0]))[0])
                raise PrepareError(f"{self.src}: row id {ids[r]}: molecule {pending.smiles!r} has a second row "
                                   f"for protein {self.proteins[int(both[0])]}", row_id=int(ids[r]))
            seen = pending.ids >= 0
            labels[0, seen] = pending.labels[seen]
            row_ids[0, seen] = pending.ids[seen]
            return base, pending.row_start
        self.emit(base, pending.tokens[None], pending.bb[None], pending.labels[None], pending.ids[None])
        state.n = base + 1
        return base + 1, self.batch_row0

    # ------------------------------------------------------------------ output
    def emit(self, row: int, tokens: np.ndarray, bb: np.ndarray, labels: np.ndarray, row_ids: np.ndarray) -> None:
        state = self.state
        self.writer.submit(row, {"tokens.u8": tokens, "labels.u8": labels, "ids.i64": row_ids, "bb.i32": bb})
        state.pairs = [a + int(b) for a, b in zip(state.pairs, (row_ids >= 0).sum(0))]
        state.positives = [a + int(b) for a, b in zip(state.positives, (labels == 1).sum(0))]

    def save_progress(self, wait: bool = True) -> None:
        """Checkpoint: the arrays are synced, then progress.json records the state as of now (a snapshot:
        with wait=False both happen in the background while later batches are computed)."""
        snapshot = json.dumps({"format": FORMAT, "version": VERSION, "source": self.source, "params": self.params,
                               "n_base_vocab": self.n_base_vocab, "state": self.state.__dict__}, indent=1)
        prog_path = self.prog_path

        def commit() -> None:
            write_text(prog_path, snapshot)

        self.writer.checkpoint(commit, wait=wait)


def _meta(split, n, n_rows, max_length, proteins, source, params, state: _State, n_base_vocab: int) -> dict:
    return {
        "format": FORMAT, "version": VERSION, "status": "complete", "split": split, "n": n, "n_rows": n_rows,
        "max_length": max_length, "proteins": proteins, "absent": ABSENT, "pad": belka_tokens.PAD,
        "vocab_size": belka_tokens.VOCAB_SIZE,
        "arrays": {k: {"dtype": d, "shape": list(s)} for k, (d, s) in array_specs(split, n, n_rows, max_length).items()},
        "bb_vocab": "bb_vocab.json", "n_bb": len(state.vocab), "n_bb_base": n_base_vocab,
        "pairs": dict(zip(proteins, state.pairs)),
        "positives": dict(zip(proteins, state.positives)) if split == "train" else None,
        "skipped_char_molecules": state.skipped_chars,
        "source": source, "params": params,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _iter_batches(pf, columns: list[str], batch_rows: int, skip_rows: int):
    """Record batches from row `skip_rows` on: starts at the row group holding it and slices the rest."""
    md = pf.metadata
    g, start = 0, 0
    while g < md.num_row_groups and start + md.row_group(g).num_rows <= skip_rows:
        start += md.row_group(g).num_rows
        g += 1
    if g >= md.num_row_groups:
        return
    skip = skip_rows - start
    for batch in pf.iter_batches(batch_size=batch_rows, row_groups=range(g, md.num_row_groups),
                                 columns=columns, use_threads=True):
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

    def __init__(self, it, depth: int = 2):
        self._q: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._it = it
        self._t = threading.Thread(target=self._run, name="belka-prepare-decode", daemon=True)
        self._t.start()

    def _put(self, item) -> bool:
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

    def __iter__(self):
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


def _raise_not_adjacent(src: Path, firsts, starts: np.ndarray, ids: np.ndarray):
    import pyarrow.compute as pc

    vc = pc.value_counts(firsts)
    dup = vc.field("values").filter(pc.greater(vc.field("counts"), 1))[0].as_py()
    where = np.flatnonzero(pc.equal(firsts, dup).to_numpy(zero_copy_only=False))
    r0, r1 = int(starts[where[0]]), int(starts[where[1]])
    raise PrepareError(f"{src}: molecule {dup!r} at row id {ids[r0]} appears again at row id {ids[r1]} after other "
                       "molecules; rows of one molecule must be adjacent (as in the competition files)",
                       row_id=int(ids[r1]))


def _count_unknown(firsts) -> int:
    import pyarrow.compute as pc

    pattern = "[^" + "".join("\\" + c if c in "[]\\^-" else c for c in belka_tokens.SYMBOLS) + "]"
    return int(pc.sum(pc.match_substring_regex(firsts, pattern)).as_py() or 0)


def _load_vocab(base: str | Path | Sequence[str]) -> list[str]:
    if isinstance(base, (str, Path)):
        p = Path(base)
        p = p / "bb_vocab.json" if p.is_dir() else p
        if not p.exists():
            raise DataError(f"building-block vocabulary {p} not found (prepare the train split first)")
        return list(json.loads(p.read_text()))
    return list(base)


class _NoBar:
    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


class _RichBar:
    def __init__(self, total: int, done: int, label: str):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("rows"), TimeRemainingColumn(), transient=False)
        self.p.start()
        self.t = self.p.add_task(label, total=total, completed=done)

    def update(self, n: int) -> None:
        self.p.update(self.t, advance=n)

    def close(self) -> None:
        self.p.stop()


def _progress_bar(enabled: bool, total: int, done: int, label: str):
    return _RichBar(total, done, label) if enabled else _NoBar()


# ------------------------------------------------------------------------------------------ both splits
def prepare_dir(raw_dir: str | Path, out_root: str | Path, **kw: Any) -> dict[str, Any]:
    """Prepare `raw_dir/train.parquet` (and `test.parquet` when present, with the train vocabulary) into
    `out_root/{train,test}/`, then write `out_root/meta.json` listing the splits (the folder a BELKA
    experiment's `data.root` points at)."""
    raw = Path(raw_dir)
    return prepare_files(raw / "train.parquet", raw / "test.parquet", out_root, **kw)


def prepare_files(train: str | Path, test: str | Path | None, out_root: str | Path, **kw: Any) -> dict[str, Any]:
    """`prepare_dir` for explicit file paths (test optional: skipped when None or absent)."""
    out = Path(out_root)
    splits: dict[str, Any] = {}
    for split, src in (("train", Path(train)), ("test", Path(test) if test else None)):
        if split == "test" and (src is None or not src.exists()):
            continue
        m = prepare(src, out / split, split, base_vocab=(out / "train") if split == "test" else None, **kw)
        if m.get("status") != "complete":
            return m
        splits[split] = {"dir": split, "n": m["n"], "n_rows": m["n_rows"]}
    root = {"format": FORMAT, "version": VERSION, "splits": splits}
    _atomic_json(out / "meta.json", root)
    return root


def prepare_command(input: Path, out: Path, *, test: Path | None = None, on_unknown: str = "error",
                    batch_rows: int | None = None, restart: bool = False, say: Any = print, warn: Any = print) -> dict:
    """`molremote data prepare --task belka`: `input` is train.parquet or the folder holding it (test.parquet
    beside it unless `test` is given); `say`/`warn` print progress lines."""
    raw = input if input.is_dir() else input.parent
    train_file = input / "train.parquet" if input.is_dir() else input
    test_file = test or raw / "test.parquet"
    if not train_file.is_file():
        raise DataError(f"{train_file} not found: give --input the competition's train.parquet "
                        "(kaggle competitions download -c leash-BELKA)")
    if not test_file.is_file():
        warn(f"no {test_file}: preparing train only")
    m = prepare_files(train_file, test_file, out, batch_rows=batch_rows or BATCH_ROWS, on_unknown=on_unknown,
                      restart=restart)
    if "splits" not in m:
        raise DataError(f"preparation stopped early ({m.get('status')}); rerun the same command to continue")
    for split, info in m["splits"].items():
        say(f"{split}: {info['n']:,} molecules ({info['n_rows']:,} rows) -> {out / split}")
    say(f"use it: data={{\"root\": \"{out}\"}} in a BELKA experiment")
    return m


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m molremote.tasks.belka.prepare", description=__doc__.split("\n")[0])
    ap.add_argument("raw_dir", help="folder with train.parquet (and test.parquet)")
    ap.add_argument("out_dir", help="prepared folder (data.root of a BELKA experiment)")
    ap.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    ap.add_argument("--on-unknown", choices=["error", "skip"], default="error")
    ap.add_argument("--restart", action="store_true", help="ignore progress.json and start over")
    a = ap.parse_args(argv)
    try:
        m = prepare_dir(a.raw_dir, a.out_dir, batch_rows=a.batch_rows, on_unknown=a.on_unknown, restart=a.restart)
    except DataError as e:
        print(f"error: {e}")
        return DataError.exit_code
    print(json.dumps({k: v for k, v in m.items()}, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
