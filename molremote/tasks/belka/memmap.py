"""Reading a prepared BELKA folder (prepare.py): memory-mapped arrays, checked against meta.json.

    data = PreparedBelka("data/belka")               # root with meta.json and train/ (test/)
    Wide(**data.train.wide_arrays())                 # what BelkaTask trains on (zero-copy views)

Folds and split groups are BelkaTask's (one rule for in-memory and prepared data); batches are gathered by
BelkaTask.batch from these maps in the training process (no DataLoader workers: the 5th-place team dropped
them because their memory kept growing over an epoch of 98M molecules; benchmarks/loader.py measures the
in-process gather).
"""

from __future__ import annotations

import json
import mmap
from pathlib import Path
from typing import Any

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
            raise DataError(
                f"{path}: {size} bytes, expected {expected} for {dtype} {shape} (meta.json); "
                "re-run the BELKA prepare step"
            )
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
            raise DataError(
                f"{meta_path} not found{hint}: prepare BELKA with "
                "`python -m molremote.tasks.belka.prepare RAW_DIR OUT_DIR`"
            )
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT or self.meta.get("version") != VERSION:
            raise DataError(
                f"{meta_path}: not a {FORMAT} v{VERSION} folder (format {self.meta.get('format')!r}, "
                f"version {self.meta.get('version')!r})"
            )
        self.split: str = self.meta["split"]
        self.n: int = self.meta["n"]
        self.proteins: list[str] = self.meta["proteins"]
        self.max_length: int = self.meta["max_length"]
        self._maps = {
            name: _Map(self.dir / name, a["dtype"], tuple(a["shape"])) for name, a in self.meta["arrays"].items()
        }
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
            raise DataError(
                f"{meta_path} not found: prepare BELKA with `python -m molremote.tasks.belka.prepare RAW_DIR OUT_DIR`"
            )
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
