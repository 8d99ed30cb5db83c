"""Reading a prepared BELKA folder (belka_prepare): memory-mapped arrays, folds, an in-process batch reader.

    data = PreparedBelka("data/belka")               # root with meta.json and train/ (test/)
    train_idx, valid_idx = data.split(fold=0, n_folds=5, scheme="building_block", seed=0)
    reader = BatchReader(data.train, train_idx, batch_size=2048, seed=0)
    for b in reader.epoch(epoch=3, start=position):   # resumable from (epoch, position)
        b.tokens, b.labels, b.idx, b.position         # uint8 (B, 142), uint8 (B, 3), sorted indices

Why not torch's DataLoader: the 5th-place team dropped it because worker processes' memory kept growing
over an epoch of 98M molecules. Here batches are gathered in the training process: the epoch order is a
permutation seeded by (seed, epoch) held in one preallocated int32/int64 buffer reused every epoch; each
batch's indices are sorted and gathered with numpy fancy indexing from the memory maps (sorted indices
touch pages in file order). Anonymous memory is flat: one order buffer and per-batch arrays. File pages
touched through the maps count in the resident set too, up to the size of the files (clean, shared with the
page cache, reclaimable; flat from the second epoch on). Where RSS itself must stay small, `release_bytes`
drops them from the process (madvise MADV_DONTNEED; the kernel keeps them cached) after that many bytes of
reads, at a cost: on 10M molecules (benchmarks/loader.py) 2.8M samples/s without release (RSS plateaus at
the 1.5 GB of mapped files), 0.28M samples/s releasing every 256 MiB (RSS <= 1.3 GB).
"""
from __future__ import annotations

import json
import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ...errors import DataError
from .prepare import ABSENT, FORMAT, VERSION  # noqa: F401  (ABSENT re-exported)


class _Map:
    """A read-only memory map of one raw array file, viewed as a numpy array (np.frombuffer over our own
    mmap object rather than np.memmap, so that madvise can be called on it: np.memmap keeps it private)."""

    def __init__(self, path: Path, dtype: str, shape: tuple[int, ...]):
        expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
        size = path.stat().st_size if path.exists() else -1
        if size != expected:
            raise DataError(f"{path}: {size} bytes, expected {expected} for {dtype} {shape} (meta.json); "
                            "re-run the BELKA prepare step")
        self.mm = None
        if expected == 0:
            self.array = np.zeros(shape, dtype=dtype)
            return
        with open(path, "rb") as f:
            self.mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if hasattr(mmap, "MADV_RANDOM"):
            self.mm.madvise(mmap.MADV_RANDOM)  # shuffled reads: read-ahead would only waste I/O
        self.array = np.frombuffer(self.mm, dtype=dtype).reshape(shape)

    def release(self) -> None:
        if self.mm is not None and hasattr(mmap, "MADV_DONTNEED"):
            self.mm.madvise(mmap.MADV_DONTNEED)


class PreparedSplit:
    """One prepared split folder (train/ or test/)."""

    def __init__(self, folder: str | Path):
        self.dir = Path(folder)
        meta_path = self.dir / "meta.json"
        if not meta_path.exists():
            hint = " (preparation incomplete: run it again to resume)" if (self.dir / "progress.json").exists() else ""
            raise DataError(f"{meta_path} not found{hint}: prepare BELKA with "
                            "`python -m molremote.tasks.belka.prepare RAW_DIR OUT_DIR`")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT or self.meta.get("version") != VERSION:
            raise DataError(f"{meta_path}: not a {FORMAT} v{VERSION} folder (format {self.meta.get('format')!r}, "
                            f"version {self.meta.get('version')!r})")
        self.split: str = self.meta["split"]
        self.n: int = self.meta["n"]
        self.proteins: list[str] = self.meta["proteins"]
        self.max_length: int = self.meta["max_length"]
        self._maps = {name: _Map(self.dir / name, a["dtype"], tuple(a["shape"]))
                      for name, a in self.meta["arrays"].items()}
        self.tokens = self._maps["tokens.u8"].array
        self.bb = self._maps["bb.i32"].array
        self.labels = self._maps["labels.u8"].array  # 255 = no label
        self.ids = self._maps["ids.i64"].array  # row id per (molecule, protein), -1 = no such row
        self.bb_vocab: list[str] = json.loads((self.dir / self.meta["bb_vocab"]).read_text())
        self._touched = 0

    def __len__(self) -> int:
        return self.n

    def release(self) -> None:
        """Drop the mapped pages from this process's resident set (they stay in the page cache)."""
        for m in self._maps.values():
            m.release()
        self._touched = 0

    def gather(self, idx: np.ndarray, release_bytes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(tokens, labels) of molecules `idx`, in `idx` order. Reads in sorted order (then puts the rows
        back in the caller's order when `idx` was not sorted)."""
        idx = np.asarray(idx)
        order = None
        if idx.size > 1 and np.any(idx[1:] < idx[:-1]):
            order = np.argsort(idx, kind="stable")
            idx = idx[order]
        tokens = self.tokens[idx]
        labels = self.labels[idx]
        if order is not None:
            inv = np.empty_like(order)
            inv[order] = np.arange(len(order))
            tokens = tokens[inv]
            labels = labels[inv]
        # each row read maps at least one page of every array
        self._touched += len(idx) * mmap.PAGESIZE * 2
        if release_bytes is not None and self._touched >= release_bytes:
            self.release()
        return tokens, labels

    def wide_arrays(self) -> dict[str, np.ndarray]:
        """The arrays as belka.Wide takes them (zero-copy): tokens, ids, labels as int8 with -1 = absent
        (the same bytes: uint8 255 is int8 -1), bb."""
        return {"tokens": self.tokens, "ids": self.ids, "labels": self.labels.view(np.int8), "bb": self.bb}


class PreparedBelka:
    """A prepared root: `meta.json` listing the splits and one folder per split."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if not meta_path.exists():
            raise DataError(f"{meta_path} not found: prepare BELKA with "
                            "`python -m molremote.tasks.belka.prepare RAW_DIR OUT_DIR`")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT:
            raise DataError(f"{meta_path}: not a {FORMAT} folder")
        splits = self.meta.get("splits", {})
        if "train" not in splits:
            raise DataError(f"{meta_path}: no train split listed")
        self.train = PreparedSplit(self.root / splits["train"]["dir"])
        self.test = PreparedSplit(self.root / splits["test"]["dir"]) if "test" in splits else None
        self.proteins = self.train.proteins

    @staticmethod
    def is_prepared(root: str | Path) -> bool:
        return (Path(root) / "meta.json").exists()

    # ------------------------------------------------------------------ folds
    def fold_assignment(self, n_folds: int, seed: int = 0) -> np.ndarray:
        """Random, balanced fold id (int8) per training molecule."""
        f = (np.arange(self.train.n) % n_folds).astype(np.int8)
        np.random.default_rng([seed, 0xF01D]).shuffle(f)
        return f

    def bb_fold(self, n_folds: int, seed: int = 0) -> np.ndarray:
        """Fold id per building block (vocabulary id), for the building-block holdout."""
        f = (np.arange(len(self.train.bb_vocab)) % n_folds).astype(np.int8)
        np.random.default_rng([seed, 0xBB]).shuffle(f)
        return f

    def split(self, fold: int, n_folds: int, scheme: str = "random", seed: int = 0,
              chunk: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
        """(train_idx, valid_idx).

        random: folds from `fold_assignment`. building_block: building blocks are assigned to folds; the
        validation molecules of fold k are those with ANY building block in fold k, training molecules have
        none (an out-of-domain holdout like the competition's "nonshare" test molecules). With 3 blocks per
        molecule the validation share is ~1 - (1 - 1/n_folds)^3 (n_folds=10: ~27%)."""
        if not 0 <= fold < n_folds:
            raise DataError(f"fold {fold} out of range 0..{n_folds - 1}")
        if scheme == "random":
            f = self.fold_assignment(n_folds, seed)
            return np.flatnonzero(f != fold), np.flatnonzero(f == fold)
        if scheme == "building_block":
            held = self.bb_fold(n_folds, seed) == fold
            valid = np.empty(self.train.n, dtype=bool)
            for lo in range(0, self.train.n, chunk):  # chunked: the (n, 3) gather of 98M rows stays small
                valid[lo:lo + chunk] = held[self.train.bb[lo:lo + chunk]].any(1)
            return np.flatnonzero(~valid), np.flatnonzero(valid)
        raise DataError(f"unknown fold scheme {scheme!r} for belka (random | building_block)")

    def share_mask(self, train_idx: np.ndarray, idx: np.ndarray, split: str = "train",
                   chunk: int = 1 << 22) -> np.ndarray:
        """True where all three building blocks of molecule idx (of `split`) occur in the training
        molecules: the competition's "share" group; False is "nonshare". Vocabulary ids are shared
        between splits (test is prepared with the train vocabulary as its base)."""
        src = self.train if split == "train" else self.test
        seen = np.zeros(max(len(src.bb_vocab), len(self.train.bb_vocab)), dtype=bool)
        train_idx = np.sort(train_idx)
        for lo in range(0, len(train_idx), chunk):  # chunked gathers: flat memory at 98M molecules
            seen[self.train.bb[train_idx[lo:lo + chunk]]] = True
        out = np.empty(len(idx), dtype=bool)
        for lo in range(0, len(idx), chunk):
            out[lo:lo + chunk] = seen[src.bb[idx[lo:lo + chunk]]].all(1)
        return out


# ---------------------------------------------------------------------------------------- batch reader
@dataclass
class Batch:
    idx: np.ndarray  # sorted molecule indices
    tokens: np.ndarray  # (B, max_length) uint8
    labels: np.ndarray  # (B, 3) uint8, 255 = absent
    position: int  # samples of this epoch consumed after this batch (resume point)
    epoch: int


class BatchReader:
    """Per-epoch shuffled batches over `indices` of a split, resumable from (epoch, position)."""

    def __init__(self, split: PreparedSplit, indices: np.ndarray, batch_size: int, *, seed: int = 0,
                 shuffle: bool = True, drop_last: bool = False, release_bytes: int | None = None):
        self.split, self.batch_size, self.seed = split, int(batch_size), seed
        self.shuffle, self.drop_last, self.release_bytes = shuffle, drop_last, release_bytes
        dtype = np.int32 if split.n < 2**31 else np.int64  # 98M indices: 393 MB as int32, twice as int64
        self.indices = np.asarray(indices, dtype=dtype)
        self._order = np.empty_like(self.indices)  # reused every epoch: no per-epoch allocation

    def __len__(self) -> int:
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The epoch's sample order: a permutation of `indices` seeded by (seed, epoch) (a view of an
        internal buffer, valid until the next call)."""
        np.copyto(self._order, self.indices)
        if self.shuffle:
            np.random.default_rng([self.seed, epoch]).shuffle(self._order)
        return self._order

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        n = len(self.indices)
        if not 0 <= start <= n:
            raise ValueError(f"start position {start} outside 0..{n}")
        order = self.order(epoch)
        end = n - n % self.batch_size if self.drop_last else n
        for lo in range(start, end, self.batch_size):
            idx = np.sort(order[lo:lo + self.batch_size])
            tokens, labels = self.split.gather(idx, self.release_bytes)
            yield Batch(idx=idx, tokens=tokens, labels=labels, position=min(lo + self.batch_size, n), epoch=epoch)
