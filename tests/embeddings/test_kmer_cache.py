"""The k-mer tower and the cache mechanics on it (torch-free): hits, duplicates, resume, shards, compaction."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from molremote.embeddings import EmbeddingSpec, EmbedStats, embed_sequences
from molremote.embeddings.cache import EmbeddingCache, sequence_digest
from molremote.embeddings.kmer import kmer_frequencies
from molremote.errors import DataError

from .conftest import random_proteins

ROOT = Path(__file__).resolve().parents[2]


def test_kmer_frequencies_by_hand():
    f1 = kmer_frequencies("AACX", 1)
    assert f1[0] == pytest.approx(2 / 3) and f1[1] == pytest.approx(1 / 3) and f1.sum() == pytest.approx(1)
    f2 = kmer_frequencies("ACAC", 2)  # AC, CA, AC
    assert f2[0 * 20 + 1] == pytest.approx(2 / 3) and f2[1 * 20 + 0] == pytest.approx(1 / 3)
    assert kmer_frequencies("AXA", 2).sum() == 0  # every 2-mer holds X


def test_rows_in_input_order_duplicates_computed_once_then_cache_hits(cache):
    seqs = random_proteins(30, 5, 60)
    seqs = seqs + seqs[:5]  # the same protein asked twice
    st = EmbedStats()
    x = embed_sequences(EmbeddingSpec("kmer:2"), seqs, cache_dir=cache, stats=st)
    assert x.shape == (35, 400) and x.dtype == np.float16
    assert (st.unique, st.cached, st.computed) == (30, 0, 30)
    for i in (0, 7, 33):
        np.testing.assert_array_equal(x[i], kmer_frequencies(seqs[i], 2).astype(np.float16))
    st2 = EmbedStats()
    y = embed_sequences(EmbeddingSpec("kmer:2"), list(reversed(seqs)), cache_dir=cache, stats=st2)
    assert (st2.cached, st2.computed) == (30, 0)
    np.testing.assert_array_equal(y, x[::-1])


def test_resume_after_interruption_loses_at_most_the_current_chunk(cache):
    seqs = random_proteins(50, 5, 60, seed=1)
    spec = EmbeddingSpec("kmer:3")

    def stop_after_two(st: EmbedStats) -> None:
        if st.chunks == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_sequences(spec, seqs, cache_dir=cache, chunk_rows=8, on_chunk=stop_after_two)
    st = EmbedStats()
    resumed = embed_sequences(spec, seqs, cache_dir=cache, chunk_rows=8, stats=st)
    assert (st.cached, st.computed) == (16, 34)
    fresh = embed_sequences(spec, seqs, cache_dir=cache.with_name("fresh"))
    np.testing.assert_array_equal(resumed, fresh)


def test_half_written_chunk_is_ignored(cache):
    seqs = random_proteins(10, 5, 30)
    embed_sequences(EmbeddingSpec("kmer:1"), seqs[:5], cache_dir=cache, chunk_rows=5)
    chunks = EmbeddingCache(cache, EmbeddingSpec("kmer:1")).chunks_dir
    (chunks / "99999999999999999999-x.keys").write_bytes(b"\0" * 64)  # a writer killed before its .npy
    (chunks / ".99999.npy.abc.tmp.npy").write_bytes(b"junk")  # and one killed inside atomic_path
    st = EmbedStats()
    embed_sequences(EmbeddingSpec("kmer:1"), seqs, cache_dir=cache, stats=st)
    assert (st.cached, st.computed) == (5, 5)


def test_corrupt_chunk_is_named(cache):
    embed_sequences(EmbeddingSpec("kmer:1"), ["MKV"], cache_dir=cache)
    c = EmbeddingCache(cache, EmbeddingSpec("kmer:1"))
    (keys,) = list(c.chunks_dir.glob("*.keys"))
    keys.write_bytes(keys.read_bytes() + b"x" * 32)
    with pytest.raises(DataError, match=r"\.npy.*1 keys|rows but 2 keys"):
        embed_sequences(EmbeddingSpec("kmer:1"), ["MKV"], cache_dir=cache)


def test_two_concurrent_shards_then_a_full_read(cache):
    seqs = random_proteins(400, 5, 80, seed=2)
    fasta = cache.parent / "p.fasta"
    fasta.write_text("".join(f">p{i}\n{s}\n" for i, s in enumerate(seqs)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = (
        "import sys; from pathlib import Path; from molremote.embeddings import *; "
        "from molremote.embeddings.fasta import read_fasta; st = EmbedStats(); "
        f"embed_sequences(EmbeddingSpec('kmer:3'), [r.sequence for r in read_fasta({str(fasta)!r})], "
        f"cache_dir=Path({str(cache)!r}), shard=(int(sys.argv[1]), 2), chunk_rows=10, stats=st); "
        "print(st.computed, st.other_shards + st.cached, 'torch' in sys.modules)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(i)], stdout=subprocess.PIPE, text=True, env=env)
        for i in (0, 1)
    ]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    done = [int(o[0]) for o in outs]
    assert sum(done) == 400 and min(done) > 150  # split by sequence hash, about half each
    # the rest was the other shard's (missing, or already committed when this one looked)
    assert [int(o[1]) for o in outs] == [400 - done[0], 400 - done[1]]
    assert [o[2] for o in outs] == ["False", "False"]  # k-mers never import torch
    st = EmbedStats()
    x = embed_sequences(EmbeddingSpec("kmer:3"), seqs, cache_dir=cache, stats=st)
    assert (st.cached, st.computed) == (400, 0)
    np.testing.assert_array_equal(x, embed_sequences(EmbeddingSpec("kmer:3"), seqs, cache_dir=cache.with_name("one")))


def test_a_shard_leaves_the_others_rows_missing(cache):
    seqs = random_proteins(40, 5, 30, seed=4)
    st = EmbedStats()
    x = embed_sequences(EmbeddingSpec("kmer:1"), seqs, cache_dir=cache, shard=(1, 3), stats=st)
    assert st.computed + st.other_shards == 40 and len(st.missing) == st.other_shards > 0
    assert np.isnan(x[st.missing]).all() and not np.isnan(np.delete(x, st.missing, axis=0)).any()


def test_compaction_merges_chunks_and_keeps_every_row(cache):
    seqs = random_proteins(60, 5, 40, seed=5)
    spec = EmbeddingSpec("kmer:2")
    before = embed_sequences(spec, seqs, cache_dir=cache, chunk_rows=7)
    embed_sequences(spec, seqs[:10], cache_dir=cache.with_name("x"))
    c = EmbeddingCache(cache, spec)
    assert c.n_chunks() == 9
    reader = EmbeddingCache(cache, spec)
    reader.refresh()  # maps the chunks before they are merged away
    assert c.compact() == 9 and c.n_chunks() == 1
    out = np.empty_like(before)
    np.testing.assert_array_equal(reader.gather([sequence_digest(s) for s in seqs], out), before)
    st = EmbedStats()
    np.testing.assert_array_equal(embed_sequences(spec, seqs, cache_dir=cache, stats=st), before)
    assert st.computed == 0


def test_bad_sequences_are_named(cache):
    with pytest.raises(DataError, match="sequence 1: empty"):
        embed_sequences(EmbeddingSpec("kmer:1"), ["MKV", ""], cache_dir=cache)
    with pytest.raises(DataError, match="sequence 0: character '1'"):
        embed_sequences(EmbeddingSpec("kmer:1"), ["MK1"], cache_dir=cache)


def test_a_cache_whose_lock_cannot_be_opened_is_still_read(cache):
    """A read-only copy (e.g. a Kaggle input dataset) cannot hold a lock file: reading goes on without one.
    (Tests run as root, where permissions do not stop writes, so the lock path is made a folder instead.)"""
    seqs = random_proteins(10, 5, 30, seed=6)
    x = embed_sequences(EmbeddingSpec("kmer:1"), seqs, cache_dir=cache)
    lock = EmbeddingCache(cache, EmbeddingSpec("kmer:1")).dir / ".lock"
    lock.unlink()
    lock.mkdir()
    st = EmbedStats()
    np.testing.assert_array_equal(embed_sequences(EmbeddingSpec("kmer:1"), seqs, cache_dir=cache, stats=st), x)
    assert st.computed == 0
