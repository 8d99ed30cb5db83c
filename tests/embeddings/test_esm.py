"""The ESM-2 path on a tiny ESM-2 trained here: pooling equals a by-hand transformers computation, policies,
batching order, resume, and the demo model's build."""

from __future__ import annotations

import json

import numpy as np
import pytest

from molremote.embeddings import EmbeddingSpec, EmbedStats, embed_sequences

from .conftest import random_proteins

pytestmark = pytest.mark.usefixtures("one_thread")


def by_hand(model_dir, texts: list[str]) -> np.ndarray:
    """transformers' own tokenizer and EsmModel, one protein at a time, mean over the residue positions."""
    import torch
    from transformers import AutoTokenizer, EsmModel

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = EsmModel.from_pretrained(model_dir, add_pooling_layer=False).eval()
    out = []
    with torch.no_grad():
        for t in texts:
            enc = tok(t, return_tensors="pt")
            assert enc["input_ids"].shape[1] == len(t) + 2
            out.append(model(**enc).last_hidden_state[0, 1:-1].mean(0).numpy())
    return np.stack(out)


def test_mean_pooled_residues_equal_transformers_by_hand(tiny_esm, proteins, cache):
    st = EmbedStats()
    x = embed_sequences(EmbeddingSpec(str(tiny_esm)), proteins, cache_dir=cache, stats=st, device="cpu")
    assert x.shape == (20, 64) and x.dtype == np.float16
    assert st.computed == 20 and st.tokens == sum(len(p) + 2 for p in proteins) and st.padded >= st.tokens
    np.testing.assert_allclose(x.astype(np.float32), by_hand(tiny_esm, proteins), atol=2e-3, rtol=2e-3)
    # rows differ between proteins (not a constant vector) and the cache answers the second call
    assert np.abs(x[0].astype(np.float32) - x[1]).max() > 1e-2
    st2 = EmbedStats()
    np.testing.assert_array_equal(
        embed_sequences(EmbeddingSpec(str(tiny_esm)), proteins, cache_dir=cache, stats=st2), x
    )
    assert (st2.cached, st2.computed) == (20, 0)


def test_file_order_batches_give_the_same_embeddings_with_more_padding(tiny_esm, cache):
    seqs = random_proteins(24, 10, 200, seed=7)
    a, b = EmbedStats(), EmbedStats()
    xs = embed_sequences(EmbeddingSpec(str(tiny_esm)), seqs, cache_dir=cache / "s", batch_tokens=1200, stats=a)
    xf = embed_sequences(
        EmbeddingSpec(str(tiny_esm)), seqs, cache_dir=cache / "f", batch_tokens=1200, sort_by_length=False, stats=b
    )
    np.testing.assert_allclose(xs.astype(np.float32), xf.astype(np.float32), atol=2e-3)
    assert a.tokens == b.tokens and a.padded < b.padded


def test_window_and_headtail_on_a_long_protein(tiny_esm, cache):
    long = random_proteins(1, 300, 301, seed=8)[0]
    short = random_proteins(1, 50, 51, seed=9)[0]
    head = EmbeddingSpec(str(tiny_esm), policy="headtail", max_len=100)
    win = EmbeddingSpec(str(tiny_esm), policy="window", max_len=100, stride=50)
    assert head.key() != win.key()
    xh = embed_sequences(head, [long, short], cache_dir=cache)
    xw = embed_sequences(win, [long, short], cache_dir=cache)
    windows = [long[s : s + 100] for s in (0, 50, 100, 150, 200)]
    ref = by_hand(tiny_esm, [long[:50] + long[-50:], *windows, short])
    np.testing.assert_allclose(xh[0].astype(np.float32), ref[0], atol=2e-3)
    np.testing.assert_allclose(xw[0].astype(np.float32), ref[1:6].mean(0), atol=2e-3)
    assert np.abs(xh[0].astype(np.float32) - xw[0]).max() > 1e-2  # the policies differ on the long protein
    np.testing.assert_array_equal(xh[1], xw[1])  # and agree on the short one


def test_resume_after_interruption_recomputes_only_the_rest(tiny_esm, cache):
    seqs = random_proteins(30, 10, 80, seed=10)
    spec = EmbeddingSpec(str(tiny_esm))

    def interrupt(st: EmbedStats) -> None:
        if st.chunks == 1:
            raise RuntimeError("simulated preemption")

    with pytest.raises(RuntimeError, match="preemption"):
        embed_sequences(spec, seqs, cache_dir=cache, chunk_rows=10, batch_tokens=400, on_chunk=interrupt)
    st = EmbedStats()
    resumed = embed_sequences(spec, seqs, cache_dir=cache, chunk_rows=10, batch_tokens=400, stats=st)
    assert 10 <= st.cached < 30 and st.computed == 30 - st.cached
    fresh = embed_sequences(spec, seqs, cache_dir=cache.with_name("fresh"), batch_tokens=400)
    np.testing.assert_allclose(resumed.astype(np.float32), fresh.astype(np.float32), atol=2e-3)


def test_demo_model_learns_and_rebuilds_to_the_same_key(tiny_esm, proteins, tmp_path):
    from molremote.embeddings import build_demo_protein_model

    info = json.loads((tiny_esm / "molremote_demo.json").read_text())
    assert info["mlm_loss_last_steps"] < info["mlm_loss_first_steps"] - 0.05  # the masked-LM loss went down
    again = build_demo_protein_model(proteins, tmp_path / "again", steps=40, crop=64)
    assert EmbeddingSpec(str(again)).key() == EmbeddingSpec(str(tiny_esm)).key()  # deterministic: same weights
    other = build_demo_protein_model(proteins, tmp_path / "seed1", seed=1, steps=5, crop=64)
    assert EmbeddingSpec(str(other)).key() != EmbeddingSpec(str(tiny_esm)).key()
