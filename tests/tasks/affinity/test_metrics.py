"""Affinity metrics against scipy / sklearn and direct O(n^2) / brute-force references, on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import mean_squared_error

from molremote.tasks.affinity import metrics as am


def ci_reference(y, p) -> float:
    """Harrell's C by definition: every pair with different true values, a tied prediction counting 1/2."""
    num = den = 0.0
    for i in range(len(y)):
        for j in range(len(y)):
            if y[i] < y[j]:
                den += 1
                num += 1.0 if p[i] < p[j] else 0.5 if p[i] == p[j] else 0.0
    return num / den


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_regression_metrics_equal_scipy_sklearn_and_the_definition(seed, ties):
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.normal(7, 1.5, n)
    p = 0.5 * y + rng.normal(0, 1, n)
    if ties:  # KIBA / pK values repeat: rounding makes many ties in both
        y, p = np.round(y, 1), np.round(p, 1)
    assert am.pearson(y, p) == pytest.approx(stats.pearsonr(y, p)[0], abs=1e-9)
    assert am.spearman(y, p) == pytest.approx(stats.spearmanr(y, p)[0], abs=1e-9)
    assert am.rmse(y, p) == pytest.approx(np.sqrt(mean_squared_error(y, p)), abs=1e-9)
    assert np.array_equal(am.rankdata(p), stats.rankdata(p))
    assert am.concordance_index(y, p) == pytest.approx(ci_reference(y, p), abs=1e-9)


def test_concordance_index_extremes():
    y = np.arange(10.0)
    assert am.concordance_index(y, y) == 1.0
    assert am.concordance_index(y, -y) == 0.0
    assert am.concordance_index(y, np.zeros(10)) == 0.5  # a constant predictor: every pair tied


def ranks_reference(q_ids, c_ids, q_emb, c_emb):
    """Brute force: per pair, cosine to every distinct candidate, other positives of the query removed."""
    pos = {}
    for q, c in zip(q_ids, c_ids):
        pos.setdefault(q, set()).add(c)
    emb_q = {q: e for q, e in zip(q_ids, q_emb)}
    emb_c = {c: e for c, e in zip(c_ids, c_emb)}
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    out = []
    for q, c in zip(q_ids, c_ids):
        s = cos(emb_q[q], emb_c[c])
        others = [d for d in emb_c if d not in pos[q]]
        out.append(1 + sum(cos(emb_q[q], emb_c[d]) >= s for d in others))
    return np.array(out)


@pytest.mark.parametrize("seed", range(3))
def test_retrieval_equals_brute_force_filtered_ranking(seed):
    rng = np.random.default_rng(seed)
    n, n_p, n_l, d = 120, 12, 40, 8
    prot, lig = rng.integers(0, n_p, n), rng.integers(0, n_l, n)
    P, L = rng.normal(size=(n_p, d)), rng.normal(size=(n_l, d))
    pe, le = P[prot], L[lig]
    r_p2l = ranks_reference(prot.tolist(), lig.tolist(), pe, le)
    r_l2p = ranks_reference(lig.tolist(), prot.tolist(), le, pe)
    assert np.array_equal(am.filtered_ranks(prot, lig, pe, le), r_p2l)
    got = am.retrieval(prot, lig, pe, le)
    for k in (1, 5, 10):
        assert got[f"p2l_recall@{k}"] == pytest.approx(np.mean(r_p2l <= k), abs=1e-12)
        assert got[f"l2p_recall@{k}"] == pytest.approx(np.mean(r_l2p <= k), abs=1e-12)
    assert got["p2l_mrr"] == pytest.approx(np.mean(1 / r_p2l), abs=1e-12)
    assert got["l2p_mrr"] == pytest.approx(np.mean(1 / r_l2p), abs=1e-12)
    # perfect embeddings: each pair's protein and ligand share a direction no other candidate has
    perfect = np.eye(n)[:, :n]
    uniq = am.retrieval(np.arange(n), np.arange(n), perfect, perfect)
    assert uniq["p2l_recall@1"] == uniq["l2p_mrr"] == 1.0


def test_random_retrieval_is_the_expectation_of_random_embeddings():
    rng = np.random.default_rng(0)
    n = 60
    prot, lig = rng.integers(0, 6, n), rng.integers(0, 25, n)
    sims = [am.retrieval(prot, lig, rng.normal(size=(n, 16)), rng.normal(size=(n, 16))) for _ in range(400)]
    expected = am.random_retrieval(prot, lig)
    for key, value in expected.items():
        assert np.mean([s[key] for s in sims]) == pytest.approx(value, abs=0.02), key


def test_contrastive_loss_equals_the_training_loss():
    torch = pytest.importorskip("torch")
    from molremote.models.clip_pl import info_nce

    rng = np.random.default_rng(1)
    n = 40
    prot, lig = rng.integers(0, 8, n), rng.integers(0, 15, n)
    pe, le = rng.normal(size=(n, 6)), rng.normal(size=(n, 6))
    got = am.contrastive_loss(prot, lig, pe, le, scale=5.0, batch_size=n)
    P = torch.nn.functional.normalize(torch.from_numpy(pe), dim=-1)
    L = torch.nn.functional.normalize(torch.from_numpy(le), dim=-1)
    ref = info_nce(P, L, torch.tensor(5.0, dtype=torch.float64), torch.from_numpy(prot), torch.from_numpy(lig))
    assert got == pytest.approx(float(ref), abs=1e-9)
