"""The embedding cache on disk: one folder per `EmbeddingSpec.key()`, rows keyed by sequence sha256.

    <cache>/<key>/meta.json              the spec, its label, the row width (written once)
    <cache>/<key>/chunks/<id>.keys       n x 32 bytes: the sha256 of each row's sequence
    <cache>/<key>/chunks/<id>.npy        float16 [n, dim], read as a memory map
    <cache>/<key>/.lock                  flock: shared while reading the chunk list, exclusive to compact

Append-only: a writer commits a chunk by writing its `.keys` then its `.npy`, each atomically (molremote.fsutil);
a chunk exists once its `.npy` does, so an interrupted writer loses at most the chunk it was computing.
Writers need no lock (each chunk has its own name: time, host, pid, random), so shards on several machines
of a shared filesystem, or two tasks asking for the same proteins, write side by side and every reader merges
all chunks (a sequence computed twice keeps its first row). `compact()` merges the chunks into one under the
exclusive lock, removing the ones it merged; readers that already mapped them keep their maps (POSIX
unlink). torch-free.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .. import fsutil
from ..errors import DataError
from .spec import EmbeddingSpec

DIGEST = 32  # sha256 bytes per key
COMPACT_AFTER = 64  # chunks in a folder before a write compacts them


def sequence_digest(sequence: str) -> bytes:
    return hashlib.sha256(sequence.encode()).digest()


class EmbeddingCache:
    """The rows stored for one spec. `lookup` maps digests to rows; `add` commits a chunk."""

    def __init__(self, root: Path, spec: EmbeddingSpec):
        self.spec = spec
        self.key = spec.key()
        self.dir = Path(root) / self.key
        self.chunks_dir = self.dir / "chunks"
        self._maps: list[np.ndarray] = []
        self._index: dict[bytes, tuple[int, int]] = {}
        self._seen: set[str] = set()

    # ---------------------------------------------------------------------------------------------- reading
    @contextmanager
    def _locked(self, kind: int) -> Iterator[None]:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            f = open(self.dir / ".lock", "a+b")
        except OSError:
            if kind == fcntl.LOCK_SH:  # a read-only copy (e.g. a Kaggle input dataset): nobody compacts it
                yield
                return
            raise
        with f:
            fcntl.flock(f, kind)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def refresh(self) -> None:
        """Map the chunks committed since the last look (every writer's: merged on read)."""
        if not self.chunks_dir.is_dir():
            return
        with self._locked(fcntl.LOCK_SH):
            names = sorted(p.name[:-4] for p in self.chunks_dir.glob("*.npy") if not p.name.startswith("."))
            for name in names:
                if name in self._seen:
                    continue
                keys_path, npy_path = self.chunks_dir / f"{name}.keys", self.chunks_dir / f"{name}.npy"
                try:
                    keys = keys_path.read_bytes()
                    arr = np.load(npy_path, mmap_mode="r")
                except FileNotFoundError:  # compacted away between the listing and now
                    continue
                except (OSError, ValueError) as e:
                    raise DataError(
                        f"embedding cache {npy_path}: unreadable ({e}); remove the chunk (its rows are recomputed)"
                    ) from None
                if arr.ndim != 2 or len(keys) != DIGEST * arr.shape[0]:
                    raise DataError(
                        f"embedding cache {npy_path}: {arr.shape} rows but {len(keys) // DIGEST} keys in "
                        f"{keys_path.name}; remove both files (their rows are recomputed)"
                    )
                self._seen.add(name)
                if arr.shape[0] == 0:
                    continue
                c = len(self._maps)
                self._maps.append(arr)
                for r in range(arr.shape[0]):
                    self._index.setdefault(keys[r * DIGEST : (r + 1) * DIGEST], (c, r))

    def __contains__(self, digest: bytes) -> bool:
        return digest in self._index

    def __len__(self) -> int:
        return len(self._index)

    @property
    def dim(self) -> int | None:
        if self._maps:
            return int(self._maps[0].shape[1])
        meta = self.meta()
        return int(meta["dim"]) if meta else None

    def meta(self) -> dict | None:
        try:
            return json.loads((self.dir / "meta.json").read_text())
        except FileNotFoundError:
            return None

    def gather(self, digests: Sequence[bytes], out: np.ndarray) -> np.ndarray:
        """Fill `out[i]` with the row of `digests[i]` (NaN where absent), chunk by chunk."""
        rows: dict[int, tuple[list[int], list[int]]] = {}
        out[...] = np.nan
        for i, d in enumerate(digests):
            hit = self._index.get(d)
            if hit is not None:
                dst, src = rows.setdefault(hit[0], ([], []))
                dst.append(i)
                src.append(hit[1])
        for c, (dst, src) in rows.items():
            order = np.argsort(src)  # read each map in file order
            out[np.asarray(dst)[order]] = self._maps[c][np.asarray(src)[order]]
        return out

    # ---------------------------------------------------------------------------------------------- writing
    def _write_meta(self, dim: int) -> None:
        meta = self.meta()
        if meta is None:
            fsutil.write_json(
                self.dir / "meta.json",
                {"key": self.key, "label": self.spec.label(), "identity": self.spec.identity(), "dim": dim},
            )
        elif int(meta["dim"]) != dim:
            raise DataError(f"embedding cache {self.dir}: rows of {meta['dim']} columns, this model gives {dim}")

    def add(self, digests: Sequence[bytes], rows: np.ndarray) -> None:
        """Commit one chunk: `.keys` then `.npy`, each atomically (the `.npy` is the commit)."""
        if len(digests) != rows.shape[0]:
            raise ValueError("one digest per row")
        if not len(digests):
            return
        self._write_meta(int(rows.shape[1]))
        name = f"{time.time_ns():020d}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self._write_chunk(name, digests, rows)

    def _write_chunk(self, name: str, digests: Iterable[bytes], rows: np.ndarray) -> None:
        fsutil.write_bytes(self.chunks_dir / f"{name}.keys", b"".join(digests))
        with fsutil.atomic_path(self.chunks_dir / f"{name}.npy", suffix=".npy") as tmp:
            np.save(tmp, np.ascontiguousarray(rows, dtype=np.float16))

    def n_chunks(self) -> int:
        return sum(1 for _ in self.chunks_dir.glob("*.npy")) if self.chunks_dir.is_dir() else 0

    def compact(self) -> int:
        """Merge every committed chunk into one (first row of a sequence kept); returns the chunks merged."""
        with self._locked(fcntl.LOCK_EX):
            names = sorted(p.name[:-4] for p in self.chunks_dir.glob("*.npy") if not p.name.startswith("."))
            if len(names) < 2:
                return 0
            keep_keys: list[bytes] = []
            parts: list[np.ndarray] = []
            seen: set[bytes] = set()
            for name in names:
                keys = (self.chunks_dir / f"{name}.keys").read_bytes()
                arr = np.load(self.chunks_dir / f"{name}.npy", mmap_mode="r")
                take = []
                for r in range(arr.shape[0]):
                    k = keys[r * DIGEST : (r + 1) * DIGEST]
                    if k not in seen:
                        seen.add(k)
                        keep_keys.append(k)
                        take.append(r)
                if take:
                    parts.append(np.asarray(arr[np.asarray(take)]))
            # named before any chunk written after it, after every chunk it merges
            merged = names[-1] + "-merged"
            self._write_chunk(merged, keep_keys, np.concatenate(parts))
            for name in names:
                (self.chunks_dir / f"{name}.npy").unlink(missing_ok=True)
                (self.chunks_dir / f"{name}.keys").unlink(missing_ok=True)
            return len(names)
