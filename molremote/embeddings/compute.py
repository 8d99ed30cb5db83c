"""`embed_sequences`: every protein's embedding under a spec, from the cache where it is, computed where not.

Missing proteins (unique sequences, optionally only this shard's) are cut into pieces by the policy,
grouped into length-sorted batches under a token budget, embedded, pooled per protein (mean of its windows),
and committed to the cache every `chunk_rows` finished proteins; an interruption loses at most the chunk in
progress and a rerun computes only what is missing. Sharding is by sequence hash, so every shard agrees on
who computes what without talking to the others, whenever each starts."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError
from ..project import project_root
from .cache import COMPACT_AFTER, EmbeddingCache, sequence_digest
from .kmer import kmer_frequencies
from .plan import Piece, batches, padded_tokens, pieces, real_tokens
from .spec import EmbeddingSpec

CHUNK_ROWS = 512  # finished proteins per committed chunk: ~10-30 s of ESM-2 150M on a GPU


def embedding_cache_dir() -> Path:
    """`MOLREMOTE_EMBEDDINGS`, else `<project>/.molremote/embeddings` (never bundled: `.molremote/` stays home)."""
    env = os.environ.get("MOLREMOTE_EMBEDDINGS")
    return Path(env).expanduser() if env else project_root() / ".molremote" / "embeddings"


@dataclass
class EmbedStats:
    """What one call did: counts over unique sequences, and the model's throughput on what it computed."""

    requested: int = 0
    unique: int = 0
    cached: int = 0  # found in the cache when the call started
    computed: int = 0  # computed by this call
    other_shards: int = 0  # missing, left to the other shards
    tokens: int = 0  # real tokens (residues + <cls>/<eos>) through the model
    padded: int = 0  # tokens including padding
    batches: int = 0
    seconds: float = 0.0  # model time (loading excluded)
    load_seconds: float = 0.0
    chunks: int = 0
    cache_dir: str = ""
    dim: int = 0
    missing: list[int] = field(default_factory=list)  # input positions without a row (shards not done)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' (0 <= i < n) -> (i, n)."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: write it i/n, e.g. 0/4 for the first of four shards") from None
    _check_shard((i, n))
    return i, n


def _check_shard(shard: tuple[int, int]) -> None:
    i, n = shard
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"shard {i}/{n}: need 0 <= i < n (the first of four is 0/4)")


def _in_shard(digest: bytes, shard: tuple[int, int]) -> bool:
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0]


def check_sequences(sequences: Sequence[str]) -> None:
    for i, s in enumerate(sequences):
        if not isinstance(s, str) or not s:
            raise DataError(f"sequence {i}: empty (every protein needs at least one residue)")
        if not s.isascii() or not s.isalpha():
            bad = next(c for c in s if not (c.isascii() and c.isalpha()))
            raise DataError(f"sequence {i}: character {bad!r} is not a residue letter")


def embed_sequences(
    spec: EmbeddingSpec,
    sequences: Sequence[str],
    *,
    cache_dir: Path | None = None,
    device: str = "auto",
    batch_tokens: int | None = None,
    shard: tuple[int, int] | None = None,
    progress: bool = False,
    sort_by_length: bool = True,
    chunk_rows: int = CHUNK_ROWS,
    on_chunk: Callable[[EmbedStats], None] | None = None,
    stats: EmbedStats | None = None,
) -> np.ndarray:
    """float16 [len(sequences), dim] in input order (rows NaN for sequences another shard has yet to compute).

    `batch_tokens`: padded tokens per batch (default 16384 on a GPU, 4096 on CPU); `shard=(i, n)`: compute only
    shard i of the missing sequences; `on_chunk(stats)` after each committed chunk; `stats` is filled in."""
    st = stats if stats is not None else EmbedStats()
    check_sequences(sequences)
    if shard is not None:
        _check_shard(shard)
    if chunk_rows < 1:
        raise UsageError(f"chunk_rows {chunk_rows}: must be at least 1")
    root = Path(cache_dir) if cache_dir is not None else embedding_cache_dir()
    cache = EmbeddingCache(root, spec)
    st.cache_dir = str(cache.dir)
    cache.refresh()

    digests = [sequence_digest(s) for s in sequences]
    first: dict[bytes, int] = {}
    for i, d in enumerate(digests):
        first.setdefault(d, i)
    st.requested, st.unique = len(sequences), len(first)
    todo = [i for d, i in first.items() if d not in cache]
    st.cached = st.unique - len(todo)
    if shard is not None:
        mine = [i for i in todo if _in_shard(digests[i], shard)]
        st.other_shards = len(todo) - len(mine)
        todo = mine

    if todo and not spec.is_kmer:
        from .spec import check_model_available

        check_model_available(spec)  # before torch is imported
    if todo:
        _compute(spec, [sequences[i] for i in todo], [digests[i] for i in todo], cache, st, device=device,
                 batch_tokens=batch_tokens, sort=sort_by_length, chunk_rows=chunk_rows, on_chunk=on_chunk,
                 progress=progress)  # fmt: skip
        if cache.n_chunks() >= COMPACT_AFTER:
            cache.compact()
        cache.refresh()
    dim = cache.dim
    if dim is None:  # nothing requested and nothing stored yet
        dim = _dim_without_rows(spec) if not sequences else 0
    st.dim = dim
    out = np.empty((len(sequences), dim), dtype=np.float16)
    if len(sequences):
        cache.gather(digests, out)
    st.missing = [i for i, d in enumerate(digests) if d not in cache]
    return out


def _dim_without_rows(spec: EmbeddingSpec) -> int:
    from .kmer import kmer_dim

    return kmer_dim(spec.kmer_k) if spec.is_kmer else 0


def _compute(
    spec: EmbeddingSpec,
    seqs: list[str],
    digests: list[bytes],
    cache: EmbeddingCache,
    st: EmbedStats,
    *,
    device: str,
    batch_tokens: int | None,
    sort: bool,
    chunk_rows: int,
    on_chunk: Callable[[EmbedStats], None] | None,
    progress: bool,
) -> None:
    pending_d: list[bytes] = []
    pending_r: list[np.ndarray] = []

    def commit() -> None:
        if pending_d:
            cache.add(pending_d, np.stack(pending_r))
            st.computed += len(pending_d)
            st.chunks += 1
            pending_d.clear()
            pending_r.clear()
            if on_chunk is not None:
                on_chunk(st)

    if spec.is_kmer:
        k = spec.kmer_k
        t0 = time.perf_counter()
        for s, d in zip(seqs, digests):
            pending_d.append(d)
            pending_r.append(kmer_frequencies(s, k))
            st.tokens += len(s)
            if len(pending_d) >= chunk_rows:
                st.seconds += time.perf_counter() - t0
                commit()
                t0 = time.perf_counter()
        st.seconds += time.perf_counter() - t0
        commit()
        return

    from .esm import EsmEmbedder

    t0 = time.perf_counter()
    model = EsmEmbedder(spec, device)
    st.load_seconds = time.perf_counter() - t0
    budget = batch_tokens or (16384 if model.device.startswith("cuda") else 4096)
    if budget < 1:
        raise UsageError(f"batch_tokens {budget}: must be positive")
    items = [Piece(j, p) for j, s in enumerate(seqs) for p in pieces(spec, s)]
    n_pieces = np.bincount([it.seq for it in items], minlength=len(seqs))
    sums = np.zeros((len(seqs), model.dim), dtype=np.float64)
    done = np.zeros(len(seqs), dtype=np.int64)
    plan = batches(items, budget, sort=sort)
    bar = _progress(progress, len(seqs))
    t0 = time.perf_counter()
    for batch in plan:
        vecs = model.embed([items[i].text for i in batch])
        st.tokens += real_tokens(items, batch)
        st.padded += padded_tokens(items, batch)
        st.batches += 1
        for row, i in enumerate(batch):
            j = items[i].seq
            sums[j] += vecs[row]
            done[j] += 1
            if done[j] == n_pieces[j]:
                pending_d.append(digests[j])
                pending_r.append((sums[j] / n_pieces[j]).astype(np.float16))
                bar(1)
        if len(pending_d) >= chunk_rows:
            st.seconds += time.perf_counter() - t0
            commit()
            t0 = time.perf_counter()
    st.seconds += time.perf_counter() - t0
    commit()


def _progress(enabled: bool, total: int) -> Callable[[int], None]:
    if not enabled:
        return lambda n: None
    from rich.progress import Progress

    p = Progress(transient=True)
    p.start()
    task = p.add_task("embedding", total=total)

    def step(n: int) -> None:
        p.advance(task, n)
        if p.finished:
            p.stop()

    return step
