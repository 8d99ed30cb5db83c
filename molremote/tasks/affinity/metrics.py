"""Affinity metrics, torch-free: retrieval both ways on held-out pairs, affinity regression, the contrastive loss.

Retrieval (filtered ranking, as in link prediction): for held-out pair (p, l), protein -> ligand ranks l
among the distinct ligands of the held-out set by cosine similarity to p, leaving out the other ligands
known to bind p in that set (they are correct answers too, not errors); rank = 1 + the number of remaining
candidates scoring >= l (ties count against). recall@k = mean over pairs of [rank <= k]; MRR = mean of
1/rank. Ligand -> protein is the same with the roles swapped. `random_retrieval` gives the exact expected
values of a random ranking on the same pairs.

Regression: Pearson (scipy.stats.pearsonr), Spearman (average ranks, scipy.stats.spearmanr), RMSE and the
concordance index (Harrell's C as in lifelines / DeepDTA: over pairs with different true values, the share
ordered the same way by the prediction, a tied prediction counting 1/2), in O(n log n).
"""

from __future__ import annotations

import math

import numpy as np

KS = (1, 5, 10)
# retrieval is O(pairs x candidates): larger validation sets are scored on a fixed sample of this many pairs
RETRIEVAL_MAX_PAIRS = 5000


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def _codes(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct ids, code of each row)."""
    uniq, first, inv = np.unique(np.asarray(ids), return_index=True, return_inverse=True)
    return first, inv.reshape(-1)


def filtered_ranks(q_ids: np.ndarray, c_ids: np.ndarray, q_emb: np.ndarray, c_emb: np.ndarray) -> np.ndarray:
    """Rank of each pair's candidate among the distinct candidates, other positives of its query left out."""
    qf, qc = _codes(q_ids)
    cf, cc = _codes(c_ids)
    Q = _normalise(np.asarray(q_emb)[qf])
    C = _normalise(np.asarray(c_emb)[cf])
    sim = Q @ C.T  # (distinct queries, distinct candidates)
    positive = np.zeros(sim.shape, dtype=bool)
    positive[qc, cc] = True
    ranks = np.empty(len(qc), dtype=np.int64)
    for i, (q, c) in enumerate(zip(qc.tolist(), cc.tolist())):
        row = sim[q]
        others = ~positive[q]
        ranks[i] = 1 + int(np.count_nonzero(others & (row >= row[c])))
    return ranks


def retrieval(prot_ids, lig_ids, prot_emb, lig_emb, ks=KS) -> dict[str, float]:
    """recall@k and MRR, protein -> ligand (`p2l_*`) and ligand -> protein (`l2p_*`)."""
    out: dict[str, float] = {}
    for name, r in (
        ("p2l", filtered_ranks(prot_ids, lig_ids, prot_emb, lig_emb)),
        ("l2p", filtered_ranks(lig_ids, prot_ids, lig_emb, prot_emb)),
    ):
        for k in ks:
            out[f"{name}_recall@{k}"] = float(np.mean(r <= k))
        out[f"{name}_mrr"] = float(np.mean(1.0 / r))
    return out


def n_candidates(q_ids: np.ndarray, c_ids: np.ndarray) -> np.ndarray:
    """Per pair: the candidates its filtered ranking chooses from (its own answer + non-positives)."""
    _, qc = _codes(q_ids)
    _, cc = _codes(c_ids)
    pos = np.zeros((qc.max() + 1, cc.max() + 1), dtype=bool)
    pos[qc, cc] = True
    n_c = cc.max() + 1
    return n_c - pos.sum(axis=1)[qc] + 1


def random_retrieval(prot_ids, lig_ids, ks=KS) -> dict[str, float]:
    """Expected recall@k (min(k, m)/m) and MRR (H_m/m) of a random ranking of m candidates per pair."""
    out: dict[str, float] = {}
    for name, m in (("p2l", n_candidates(prot_ids, lig_ids)), ("l2p", n_candidates(lig_ids, prot_ids))):
        for k in ks:
            out[f"{name}_recall@{k}"] = float(np.mean(np.minimum(k, m) / m))
        harmonic = np.cumsum(1.0 / np.arange(1, m.max() + 1))
        out[f"{name}_mrr"] = float(np.mean(harmonic[m - 1] / m))
    return out


def recall_at_10(prot_ids, lig_ids, prot_emb, lig_emb) -> float:
    """The task's model-selection metric: recall@10 averaged over both directions."""
    r = retrieval(prot_ids, lig_ids, prot_emb, lig_emb, ks=(10,))
    return (r["p2l_recall@10"] + r["l2p_recall@10"]) / 2


# ------------------------------------------------------------------------------------------- regression
def pearson(y: np.ndarray, p: np.ndarray) -> float:
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    yc, pc = y - y.mean(), p - p.mean()
    den = math.sqrt(float(yc @ yc) * float(pc @ pc))
    return float(yc @ pc) / den if den > 0 else float("nan")


def rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks from 1 (scipy.stats.rankdata's default)."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new = np.r_[True, xs[1:] != xs[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(x)]
    avg = (starts + ends + 1) / 2.0  # mean of 1-based positions start+1 .. end
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def spearman(y: np.ndarray, p: np.ndarray) -> float:
    return pearson(rankdata(y), rankdata(p))


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    d = np.asarray(y, np.float64) - np.asarray(p, np.float64)
    return float(np.sqrt(np.mean(d * d)))


def _count_less(values: np.ndarray) -> tuple[int, int]:
    """(pairs i<j with values[i] < values[j], pairs with values[i] == values[j]) by merge counting."""
    v = np.asarray(values, np.float64)
    # ties: from group sizes
    _, counts = np.unique(v, return_counts=True)
    ties = int((counts * (counts - 1) // 2).sum())
    # inversions (i<j, v[i] > v[j]) with a Fenwick tree over value ranks
    r = np.unique(v, return_inverse=True)[1].reshape(-1) + 1
    tree = np.zeros(int(r.max()) + 1, dtype=np.int64)
    greater = 0
    for seen, x in enumerate(r.tolist()):
        # count earlier values <= x
        s, i = 0, x
        while i > 0:
            s += tree[i]
            i -= i & -i
        greater += seen - s
        i = x
        while i < len(tree):
            tree[i] += 1
            i += i & -i
    n = len(v)
    return n * (n - 1) // 2 - greater - ties, ties


def concordance_index(y: np.ndarray, p: np.ndarray) -> float:
    """Harrell's C over pairs with different true values (lifelines' concordance_index without censoring)."""
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    order = np.lexsort((p, y))  # by y, then by prediction
    ys, ps = y[order], p[order]
    # pairs i<j in this order with y_i < y_j: concordant if p_i < p_j, tie if p_i == p_j
    # all pairs ordered by y: count over all i<j then subtract the pairs with equal y
    less_all, tie_all = _count_less(ps)
    less_in, tie_in = 0, 0
    starts = np.flatnonzero(np.r_[True, ys[1:] != ys[:-1]])
    ends = np.r_[starts[1:], len(ys)]
    for s, e in zip(starts.tolist(), ends.tolist()):
        if e - s > 1:
            a, b = _count_less(ps[s:e])
            less_in += a
            tie_in += b
    n = len(y)
    _, yc = np.unique(ys, return_counts=True)
    comparable = n * (n - 1) // 2 - int((yc * (yc - 1) // 2).sum())
    if comparable == 0:
        return float("nan")
    concordant = less_all - less_in
    ties = tie_all - tie_in
    return (concordant + 0.5 * ties) / comparable


def regression(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "pearson": pearson(y, p),
        "spearman": spearman(y, p),
        "rmse": rmse(y, p),
        "ci": concordance_index(y, p),
    }


# ------------------------------------------------------------------------------------ contrastive loss
def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return (m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))).squeeze(axis)


def contrastive_loss(prot_ids, lig_ids, prot_emb, lig_emb, scale: float, batch_size: int) -> float:
    """The training loss on held-out pairs, in consecutive batches of `batch_size`: symmetric InfoNCE
    (mean of both directions) on scale * cosine, pairs sharing a protein or a ligand masked out."""
    P, L = _normalise(prot_emb), _normalise(lig_emb)
    pi, li = np.asarray(prot_ids), np.asarray(lig_ids)
    total, n = 0.0, 0
    for s in range(0, len(P), batch_size):
        sl = slice(s, s + batch_size)
        logits = scale * P[sl] @ L[sl].T
        b = logits.shape[0]
        mask = (pi[sl][:, None] == pi[sl][None, :]) | (li[sl][:, None] == li[sl][None, :])
        mask[np.arange(b), np.arange(b)] = False
        logits = np.where(mask, -np.inf, logits)
        d = np.diag(logits)
        loss = 0.5 * (np.mean(_logsumexp(logits, 1) - d) + np.mean(_logsumexp(logits, 0) - d))
        total += loss * b
        n += b
    return total / n


def pair_similarity(prot_emb: np.ndarray, lig_emb: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pair's own protein and ligand (an affinity score without a regression head)."""
    return np.sum(_normalise(prot_emb) * _normalise(lig_emb), axis=1)


def sample_positions(n: int, cap: int = RETRIEVAL_MAX_PAIRS, seed: int = 0) -> np.ndarray:
    """The positions retrieval is scored on: all n, or a fixed seeded sample of `cap` (sorted)."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))
