"""Pieces of a protein under each policy, and token-budget batches."""

from __future__ import annotations

import pytest

from molremote.embeddings import EmbeddingSpec
from molremote.embeddings.plan import Piece, batches, padded_tokens, pieces, real_tokens
from molremote.errors import UsageError

from .conftest import random_proteins


def test_short_protein_is_one_piece_under_both_policies():
    s = "MKV" * 5
    for policy in ("headtail", "window"):
        assert pieces(EmbeddingSpec("kmer:1", policy=policy, max_len=20, stride=10), s) == [s]


def test_headtail_keeps_first_and_last_residues():
    s = "".join(chr(ord("A") + i % 26) for i in range(50))
    (p,) = pieces(EmbeddingSpec("m/x", policy="headtail", max_len=11), s)
    assert p == s[:5] + s[-6:] and len(p) == 11


def test_windows_cover_the_protein_and_end_at_its_end():
    s = "".join(chr(ord("A") + i % 26) for i in range(45))
    ws = pieces(EmbeddingSpec("m/x", policy="window", max_len=20, stride=10), s)
    assert ws == [s[0:20], s[10:30], s[20:40], s[25:45]]
    ws = pieces(EmbeddingSpec("m/x", policy="window", max_len=20, stride=10), s[:40])
    assert ws == [s[0:20], s[10:30], s[20:40]]


def test_batches_respect_the_budget_and_sorting_cuts_padding():
    items = [Piece(i, s) for i, s in enumerate(random_proteins(200, 10, 400, seed=3))]
    for sort in (True, False):
        plan = batches(items, 2048, sort=sort)
        assert sorted(i for b in plan for i in b) == list(range(200))
        assert all(padded_tokens(items, b) <= 2048 for b in plan)
    sorted_pad = sum(padded_tokens(items, b) for b in batches(items, 2048))
    file_pad = sum(padded_tokens(items, b) for b in batches(items, 2048, sort=False))
    real = sum(real_tokens(items, b) for b in batches(items, 2048))
    assert real / sorted_pad > 0.95 and real / file_pad < 0.7  # sorted: almost no padding
    first = batches(items, 2048)[0]
    assert len(items[first[0]].text) == max(len(it.text) for it in items)  # longest first


def test_too_long_input_is_a_batch_of_one():
    items = [Piece(0, "A" * 100), Piece(1, "A" * 5)]
    assert batches(items, 50) == [[0], [1]]


@pytest.mark.parametrize(
    "kw, word",
    [
        ({"policy": "sliding"}, "policy"),
        ({"stride": 0}, "stride"),
        ({"model": "kmer:9"}, "k-mer"),
        ({"max_len": 1}, "max_len"),
        ({"policy": "window", "max_len": 10, "stride": 11}, "stride"),
    ],
)
def test_bad_spec_is_a_usage_error(kw, word):
    with pytest.raises(UsageError, match=word):
        EmbeddingSpec(**{"model": "facebook/esm2_t6_8M_UR50D", **kw})


def test_key_depends_on_what_changes_numbers():
    base = EmbeddingSpec("facebook/esm2_t30_150M_UR50D")
    assert base.key() == EmbeddingSpec("facebook/esm2_t30_150M_UR50D").key()
    assert base.key() == EmbeddingSpec("facebook/esm2_t30_150M_UR50D", stride=100).key()  # unused by headtail
    others = [
        EmbeddingSpec("facebook/esm2_t33_650M_UR50D"),
        EmbeddingSpec("facebook/esm2_t30_150M_UR50D", policy="window"),
        EmbeddingSpec("facebook/esm2_t30_150M_UR50D", max_len=512),
        EmbeddingSpec("facebook/esm2_t30_150M_UR50D", revision="abc123"),
    ]
    assert len({base.key(), *(o.key() for o in others)}) == 5
