"""Protein embeddings of a pretrained model, computed once and shared: the embedding cache.

    from molremote.embeddings import EmbeddingSpec, embed_sequences
    X = embed_sequences(EmbeddingSpec("facebook/esm2_t30_150M_UR50D"), sequences)   # float16 [n, 640]

`spec.py` what an embedding is and its cache key; `plan.py` pieces (head+tail, windows) and length-sorted
batches; `cache.py` the on-disk store (append-only chunks, merged on read); `compute.py` the orchestration
(cache hits, shards, chunks); `esm.py` transformers' ESM-2; `kmer.py` torch-free k-mer features; `fasta.py`
FASTA reading; `demo_model.py` a tiny ESM-2 trained offline for demos and tests. Importing this package
imports no torch or transformers (only `esm.py` and `demo_model.py` do, when called)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .compute import EmbedStats, embed_sequences, embedding_cache_dir, parse_shard
from .spec import EmbeddingSpec

if TYPE_CHECKING:
    from collections.abc import Sequence


def build_demo_protein_model(sequences: Sequence[str], out_dir: Path, *, seed: int = 0, **kw: object) -> Path:
    """A tiny ESM-2 masked-LM-trained on `sequences`, saved in Hugging Face format (see `demo_model.py`)."""
    from .demo_model import build_demo_protein_model as build

    return build(sequences, out_dir, seed=seed, **kw)  # type: ignore[arg-type]


__all__ = [
    "EmbedStats",
    "EmbeddingSpec",
    "build_demo_protein_model",
    "embed_sequences",
    "embedding_cache_dir",
    "parse_shard",
]
