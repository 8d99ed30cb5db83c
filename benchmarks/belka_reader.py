"""The in-process batch reader over a prepared BELKA split that benchmarks/loader.py and train_cnn1d.py measure
(kept here, beside its benchmarks: the product's batches come from BelkaTask.batch).

Batches are gathered in the training process: the epoch order is a permutation seeded by (seed, epoch) held in
one preallocated int32/int64 buffer reused every epoch; each batch's indices are sorted and gathered with numpy
fancy indexing from the memory maps (sorted indices touch pages in file order). File pages touched through the
maps count in the resident set, up to the size of the files (clean, reclaimable); `release_bytes` drops them
from the process (madvise MADV_DONTNEED) after that many bytes of reads: on 10M molecules 2.8M samples/s
without release (RSS plateaus at the 1.5 GB of mapped files), 0.28M samples/s releasing every 256 MiB.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from molremote.tasks.belka.memmap import PreparedSplit


def gather(split: PreparedSplit, idx: np.ndarray, release_bytes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, labels) of molecules `idx`, in `idx` order. Reads in sorted order (then puts the rows
    back in the caller's order when `idx` was not sorted)."""
    idx = np.asarray(idx)
    order = None
    if idx.size > 1 and np.any(idx[1:] < idx[:-1]):
        order = np.argsort(idx, kind="stable")
        idx = idx[order]
    tokens = split.tokens[idx]
    labels = split.labels[idx]
    if order is not None:
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        tokens = tokens[inv]
        labels = labels[inv]
    # each row read maps at least one page of every array
    split._touched += len(idx) * mmap.PAGESIZE * 2
    if release_bytes is not None and split._touched >= release_bytes:
        split.release()
    return tokens, labels


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

    def __init__(
        self,
        split: PreparedSplit,
        indices: np.ndarray,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        release_bytes: int | None = None,
    ):
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
            idx = np.sort(order[lo : lo + self.batch_size])
            tokens, labels = gather(self.split, idx, self.release_bytes)
            yield Batch(idx=idx, tokens=tokens, labels=labels, position=min(lo + self.batch_size, n), epoch=epoch)
