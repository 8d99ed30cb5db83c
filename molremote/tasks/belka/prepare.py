"""Prepare BELKA's full long parquet (~295M rows) as fixed-width arrays for training: streaming, resumable.

    prepare("train.parquet", "data/belka/train", split="train")
    prepare("test.parquet",  "data/belka/test",  split="test", base_vocab="data/belka/train")
    prepare_dir("raw/", "data/belka")      # both, plus data/belka/meta.json (what BelkaTask looks for)
    python -m molremote.tasks.belka.prepare raw/ data/belka

The parquet is read in record batches by the one BELKA reader (`reader.py`, also used for small files in
memory: same checks, errors, molecules and building-block ids), never whole. Rows of one molecule must be
adjacent, as in the real files (molecule-major; BRD4, HSA, sEH); this is checked within every batch and
across each batch boundary (a molecule seen again after other molecules is refused, naming both row ids;
one recurring several batches later would need a global index of 98M SMILES and is not looked for), and a
molecule whose rows straddle a batch boundary is held back and finished with the next batch.

Output folder (raw little-endian matrices, `np.memmap`-able):

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

Unknown characters: refused with the file row, row id and character (policy "error"), or dropped to PAD (policy
"skip", the task's `unknown_chars`; the count of affected molecules is recorded in meta.json).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ...fsutil import write_json, write_text
from . import tokens as belka_tokens
from .reader import ABSENT, PROTEINS, LongFileError, LongReader, open_long

FORMAT = "molremote-belka-prepared"
VERSION = 1
# Default record batch: 131,072 rows (~44k molecules). Measured on 10M generated molecules (2 cores,
# decode/write threads): 256k-row batches 1.23-1.30M molecules/s at 670 MiB peak RSS, 128k 1.33-1.45M/s
# at 500 MiB, 64k 1.37-1.41M/s at 400 MiB: smaller batches stay in cache, larger ones only add memory.
BATCH_ROWS = 1 << 17
# Checkpoint (fdatasync + progress.json, in a background thread) after this many bytes of output, besides
# every checkpoint_s: the disk then writes while later batches are computed, instead of all at the end
# (10M molecules are 1.5 GB of output; this machine's disk syncs ~420 MB/s).
CHECKPOINT_BYTES = 256 << 20

PrepareError = LongFileError  # the name prepare's callers know: a bad row (file, row, id, value)


# ------------------------------------------------------------------------------------------ file layout
def array_specs(split: str, n: int, n_rows: int, max_length: int) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (numpy dtype, shape) of the arrays in a prepared folder."""
    return {
        "tokens.u8": ("uint8", (n, max_length)),
        "labels.u8": ("uint8", (n, 3)),
        "ids.i64": ("int64", (n, 3)),
        "bb.i32": ("int32", (n, 3)),
    }


def _atomic_json(path: Path, obj: Any) -> None:
    write_json(path, obj, indent=1)


def _source_info(path: Path, pf) -> dict[str, Any]:
    md = pf.metadata
    return {
        "path": str(path.resolve()),
        "size": path.stat().st_size,
        "num_rows": md.num_rows,
        "num_row_groups": md.num_row_groups,
        "columns": pf.schema_arrow.names,
    }


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
        self._last: Future[None] | None = None
        self._ckpt: Future[None] | None = None
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
        buf = np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data  # a flat byte memoryview
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
def prepare(
    input_parquet: str | Path,
    out_dir: str | Path,
    split: str = "train",
    *,
    batch_rows: int = BATCH_ROWS,
    max_length: int = 142,
    on_unknown: str = "error",
    base_vocab: str | Path | Sequence[str] | None = None,
    progress: bool = True,
    checkpoint_s: float = 10.0,
    max_batches: int | None = None,
    restart: bool = False,
) -> dict[str, Any]:
    """Prepare one split. Returns meta.json's content; with `max_batches` (a time box, and how the tests
    interrupt it) it may return early with {"status": "incomplete", ...}: call again to continue.

    `base_vocab`: building-block vocabulary to extend (a prepared folder or a list of SMILES), so that test
    building blocks get the same ids as in train and unseen ones are recognisable (id >= len(base)).

    Steps: check the arguments and the file (`reader.open_long`), return an existing complete result
    (`_finished_meta`), start or resume the state (`_start_state`), then stream the molecules
    (`_Preparer.run`, reading with `reader.LongReader`).
    """
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    if on_unknown not in ("error", "skip"):
        raise DataError(f"on_unknown must be 'error' or 'skip', got {on_unknown!r}")
    src, out = Path(input_parquet), Path(out_dir)
    source = _source_info(src, open_long(src, labelled=split == "train"))
    # "proteins" stays in params (and so in meta.json) for folders prepared before the reader was shared
    params = {"split": split, "max_length": max_length, "proteins": list(PROTEINS), "on_unknown": on_unknown}
    out.mkdir(parents=True, exist_ok=True)
    meta = _finished_meta(out, source, params, restart)
    if meta is not None:
        return meta
    state, fresh, n_base_vocab = _start_state(out, source, params, base_vocab, restart)
    run = _Preparer(
        src,
        out,
        split,
        source,
        params,
        state,
        fresh,
        n_base_vocab,
        batch_rows=batch_rows,
        max_length=max_length,
        on_unknown=on_unknown,
        checkpoint_s=checkpoint_s,
    )
    return run.run(progress=progress, max_batches=max_batches)


def _finished_meta(out: Path, source: dict[str, Any], params: dict[str, Any], restart: bool) -> dict | None:
    """meta.json of a complete preparation of the same input and parameters (None: prepare); DataError when
    the folder holds another one."""
    meta_path = out / "meta.json"
    if not meta_path.exists() or restart:
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("source", {}).get("size") == source["size"] and meta.get("params") == params:
        return meta  # already complete
    raise DataError(
        f"{out} already holds a prepared BELKA {meta.get('split')!r} split from "
        f"{meta.get('source', {}).get('path')} with other parameters; use another folder or restart=True"
    )


def _start_state(
    out: Path,
    source: dict[str, Any],
    params: dict[str, Any],
    base_vocab: str | Path | Sequence[str] | None,
    restart: bool,
) -> tuple[_State, bool, int]:
    """(state, fresh, size of the base vocabulary): resumed from progress.json when it belongs to this input
    and these parameters, else new (seeded with the base vocabulary)."""
    meta_path, prog_path = out / "meta.json", out / "progress.json"
    state, fresh = _State(), True
    if prog_path.exists() and not restart:
        prog = json.loads(prog_path.read_text())
        if (
            prog.get("source", {}).get("size") != source["size"]
            or prog.get("source", {}).get("num_rows") != source["num_rows"]
            or prog.get("params") != params
        ):
            raise DataError(
                f"{prog_path} belongs to another input or parameters "
                f"({prog.get('source', {}).get('path')}, {prog.get('params')}); use restart=True"
            )
        state, fresh = _State(**prog["state"]), False
    elif base_vocab is not None:
        state.vocab = _load_vocab(base_vocab)
    n_base_vocab = len(_load_vocab(base_vocab)) if base_vocab is not None else 0
    if restart:
        meta_path.unlink(missing_ok=True)
    return state, fresh, n_base_vocab


class _Preparer:
    """One split's streaming pass: the reader (reader.LongReader) hands over complete molecules per record
    batch; they are written at their rows; checkpoint now and then; at the end truncate and write meta.json."""

    def __init__(
        self,
        src: Path,
        out: Path,
        split: str,
        source: dict[str, Any],
        params: dict[str, Any],
        state: _State,
        fresh: bool,
        n_base_vocab: int,
        *,
        batch_rows: int,
        max_length: int,
        on_unknown: str,
        checkpoint_s: float,
    ):
        self.src, self.out, self.split = src, out, split
        self.source, self.params, self.state, self.n_base_vocab = source, params, state, n_base_vocab
        self.max_length, self.checkpoint_s = max_length, checkpoint_s
        self.meta_path, self.prog_path = out / "meta.json", out / "progress.json"
        self.n_rows = source["num_rows"]
        self.specs = array_specs(split, self.n_rows, self.n_rows, max_length)  # capacity: <= one molecule per row
        self.writer = _Writer(out, self.specs, fresh)
        # the reader extends state.vocab in place; it reuses a token buffer two batches later, after the
        # writer (one batch in flight) is done with it
        self.reader = LongReader(
            src,
            labelled=split == "train",
            max_length=max_length,
            on_unknown=on_unknown,
            vocab=state.vocab,
            batch_rows=batch_rows,
            start_row=state.rows_done,
        )
        self.skipped0 = state.skipped_chars

    # ------------------------------------------------------------------ the pass
    def run(self, *, progress: bool, max_batches: int | None) -> dict[str, Any]:
        state, reader = self.state, self.reader
        t_last = time.monotonic()
        bar = _progress_bar(progress, self.n_rows, state.rows_done, f"prepare {self.split}")
        try:
            batches = iter(reader)
            while max_batches is None or state.batches < max_batches:
                blocks = next(batches, None)
                if blocks is None:  # the whole file was read
                    return self.finish()
                for b in blocks:
                    self.emit(state.n, b.tokens, b.bb, b.labels, b.ids)
                    state.n += len(b)
                bar.update(reader.rows_done - state.rows_done)
                state.rows_done, state.skipped_chars = reader.rows_done, self.skipped0 + reader.skipped_chars
                if not reader.done:
                    state.batches += 1
                if time.monotonic() - t_last > self.checkpoint_s or self.writer.unsynced >= CHECKPOINT_BYTES:
                    self.save_progress(wait=False)
                    t_last = time.monotonic()
            self.save_progress()
            return {
                "status": "incomplete",
                "rows_done": state.rows_done,
                "molecules": state.n,
                "batches": state.batches,
            }
        finally:
            reader.close()
            bar.close()
            self.writer.close()

    def finish(self) -> dict[str, Any]:
        """After the last molecule: truncate the arrays, write meta.json."""
        state = self.state
        if state.rows_done != self.n_rows and self.n_rows:
            raise DataError(f"{self.src}: read {state.rows_done} rows, metadata says {self.n_rows}")  # pragma: no cover
        n = state.n
        self.writer.truncate({name: n for name in self.specs})
        self.save_progress()
        meta = _meta(
            self.split,
            n,
            self.n_rows,
            self.max_length,
            list(PROTEINS),
            self.source,
            self.params,
            state,
            self.n_base_vocab,
        )
        _atomic_json(self.out / "bb_vocab.json", state.vocab)
        _atomic_json(self.meta_path, meta)
        self.prog_path.unlink()
        return meta

    # ------------------------------------------------------------------ output
    def emit(self, row: int, tokens: np.ndarray, bb: np.ndarray, labels: np.ndarray, row_ids: np.ndarray) -> None:
        state = self.state
        self.writer.submit(row, {"tokens.u8": tokens, "labels.u8": labels, "ids.i64": row_ids, "bb.i32": bb})
        state.pairs = [a + int(b) for a, b in zip(state.pairs, (row_ids >= 0).sum(0))]
        state.positives = [a + int(b) for a, b in zip(state.positives, (labels == 1).sum(0))]

    def save_progress(self, wait: bool = True) -> None:
        """Checkpoint: the arrays are synced, then progress.json records the state as of now (a snapshot:
        with wait=False both happen in the background while later batches are computed)."""
        snapshot = json.dumps(
            {
                "format": FORMAT,
                "version": VERSION,
                "source": self.source,
                "params": self.params,
                "n_base_vocab": self.n_base_vocab,
                "state": self.state.__dict__,
            },
            indent=1,
        )
        prog_path = self.prog_path

        def commit() -> None:
            write_text(prog_path, snapshot)

        self.writer.checkpoint(commit, wait=wait)


def _meta(split, n, n_rows, max_length, proteins, source, params, state: _State, n_base_vocab: int) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "status": "complete",
        "split": split,
        "n": n,
        "n_rows": n_rows,
        "max_length": max_length,
        "proteins": proteins,
        "absent": ABSENT,
        "pad": belka_tokens.PAD,
        "vocab_size": belka_tokens.VOCAB_SIZE,
        "arrays": {
            k: {"dtype": d, "shape": list(s)} for k, (d, s) in array_specs(split, n, n_rows, max_length).items()
        },
        "bb_vocab": "bb_vocab.json",
        "n_bb": len(state.vocab),
        "n_bb_base": n_base_vocab,
        "pairs": dict(zip(proteins, state.pairs)),
        "positives": dict(zip(proteins, state.positives)) if split == "train" else None,
        "skipped_char_molecules": state.skipped_chars,
        "source": source,
        "params": params,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


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

        self.p = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeRemainingColumn(),
            transient=False,
        )
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
        if src is None or (split == "test" and not src.exists()):
            continue
        m = prepare(src, out / split, split, base_vocab=(out / "train") if split == "test" else None, **kw)
        if m.get("status") != "complete":
            return m
        splits[split] = {"dir": split, "n": m["n"], "n_rows": m["n_rows"]}
    root = {"format": FORMAT, "version": VERSION, "splits": splits}
    _atomic_json(out / "meta.json", root)
    return root


def prepare_command(
    input: Path,
    out: Path,
    *,
    test: Path | None = None,
    on_unknown: str = "error",
    batch_rows: int | None = None,
    restart: bool = False,
    say: Any = print,
    warn: Any = print,
) -> dict:
    """`molremote data prepare --task belka`: `input` is train.parquet or the folder holding it (test.parquet
    beside it unless `test` is given); `say`/`warn` print progress lines."""
    raw = input if input.is_dir() else input.parent
    train_file = input / "train.parquet" if input.is_dir() else input
    test_file = test or raw / "test.parquet"
    if not train_file.is_file():
        raise DataError(
            f"{train_file} not found: give --input the competition's train.parquet "
            "(kaggle competitions download -c leash-BELKA)"
        )
    if not test_file.is_file():
        warn(f"no {test_file}: preparing train only")
    m = prepare_files(
        train_file, test_file, out, batch_rows=batch_rows or BATCH_ROWS, on_unknown=on_unknown, restart=restart
    )
    if "splits" not in m:
        raise DataError(f"preparation stopped early ({m.get('status')}); rerun the same command to continue")
    for split, info in m["splits"].items():
        say(f"{split}: {info['n']:,} molecules ({info['n_rows']:,} rows) -> {out / split}")
    say(f'use it: data={{"root": "{out}"}} in a BELKA experiment')
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
