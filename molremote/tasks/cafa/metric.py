"""CAFA's metric, torch-free numpy: IA-weighted F-max per namespace, averaged over the namespaces.

For one namespace, over the proteins annotated in it (after propagation) and thresholds tau = 0.01 .. 0.99:
  - a protein's predicted set at tau: its (max-propagated) terms with score >= tau;
  - weighted precision at tau: the mean, over proteins with at least one predicted term of positive IA, of
    IA(predicted and true) / IA(predicted);
  - weighted recall at tau: the mean, over ALL annotated proteins, of IA(predicted and true) / IA(true);
  - F = 2 pr rc / (pr + rc); F-max = its maximum over the thresholds at which at least one protein has a
    prediction. Only terms with IA > 0 weigh (IA = 0 or missing terms do not count).
Unweighted F-max is the same with every term weighing 1; S-min is the minimum over tau of
sqrt(ru^2 + mi^2), ru/mi the mean remaining uncertainty / misinformation (IA of missed / wrongly predicted
terms) per annotated protein. These follow the definitions of CAFA's evaluator (the `cafaeval` package, GPL,
used only as a test oracle: tests/tasks/cafa/test_metric.py checks equality to 1e-9).

How: each (protein, term, score) pair falls into the threshold bin k = #{tau <= score}; per protein, a
histogram of IA over bins, cumulated from the top, gives the predicted and true-positive IA at every
threshold at once: O(pairs + proteins x 99), no protein x term matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ontology import ASPECTS, Ontology

TAUS = np.arange(0.01, 1, 0.01)  # the evaluator's thresholds (th_step 0.01), same floating values


@dataclass
class NamespaceScore:
    aspect: str
    n_proteins: int  # annotated proteins (recall denominator)
    fmax_w: float
    tau_w: float | None
    fmax: float
    tau: float | None
    smin_w: float | None
    smin: float | None
    coverage: float  # share of annotated proteins with a prediction at the lowest threshold

    def as_dict(self) -> dict[str, float | int | str | None]:
        return dict(self.__dict__)


def _curve(rows: np.ndarray, k: np.ndarray, w: np.ndarray, hit: np.ndarray, gt_w: np.ndarray) -> dict[str, np.ndarray]:
    """Per threshold: n (proteins with a weighted prediction), pr, rc, ru, mi (cafa normalisation)."""
    ne, nt = len(gt_w), len(TAUS)
    flat = rows * (nt + 1) + k
    size = ne * (nt + 1)
    hp = np.bincount(flat, weights=w, minlength=size).reshape(ne, nt + 1)
    ht = np.bincount(flat, weights=w * hit, minlength=size).reshape(ne, nt + 1)
    # pred[:, j] = sum of bins k >= j + 1 (a pair counts at tau_j when score >= tau_j, i.e. k > j)
    pred = np.cumsum(hp[:, ::-1], axis=1)[:, ::-1][:, 1:]
    tp = np.cumsum(ht[:, ::-1], axis=1)[:, ::-1][:, 1:]
    has = pred > 0
    n = has.sum(axis=0)
    prec = np.divide(tp, pred, out=np.zeros_like(tp), where=has).sum(axis=0)
    pr = np.divide(prec, n, out=np.zeros_like(prec), where=n > 0)
    pos = gt_w > 0
    rc = (tp[pos] / gt_w[pos, None]).sum(axis=0) / ne
    ru = (gt_w[:, None] - tp).sum(axis=0) / ne
    mi = (pred - tp).sum(axis=0) / ne
    return {"n": n, "pr": pr, "rc": rc, "ru": ru, "mi": mi}


def _f(pr: np.ndarray, rc: np.ndarray) -> np.ndarray:
    d = pr + rc
    return np.divide(2 * pr * rc, d, out=np.zeros_like(d), where=d != 0)


def score_namespace(
    aspect: str,
    n_proteins: int,
    truth_rows: np.ndarray,
    truth_w: np.ndarray,
    truth_ones: np.ndarray,
    pred_rows: np.ndarray,
    pred_score: np.ndarray,
    pred_hit: np.ndarray,
    pred_w: np.ndarray,
) -> NamespaceScore:
    """One namespace from propagated pairs. rows are 0..n_proteins-1 (the annotated proteins); pred_hit says
    whether a predicted pair is a true term; *_w the pair's term IA, truth_ones its unweighted weight."""
    k = np.searchsorted(TAUS, pred_score, side="right")  # thresholds <= score
    out = {}
    for name, w, gw in (
        ("w", pred_w, np.bincount(truth_rows, weights=truth_w, minlength=n_proteins)),
        ("u", np.ones_like(pred_w), np.bincount(truth_rows, weights=truth_ones, minlength=n_proteins)),
    ):
        out[name] = _curve(pred_rows, k, w, pred_hit.astype(np.float64), gw)
    valid = out["u"]["n"] > 0  # the evaluator keeps thresholds where some protein has a prediction
    res: dict[str, tuple[float, float | None, float | None]] = {}
    for name, c in out.items():
        if not valid.any():
            res[name] = (0.0, None, None)
            continue
        f = np.where(valid, _f(c["pr"], c["rc"]), -np.inf)
        j = int(np.argmax(f))
        s = np.where(valid, np.sqrt(c["ru"] ** 2 + c["mi"] ** 2), np.inf)
        res[name] = (float(f[j]), float(TAUS[j]), float(s.min()))
    return NamespaceScore(
        aspect,
        n_proteins,
        fmax_w=res["w"][0],
        tau_w=res["w"][1],
        fmax=res["u"][0],
        tau=res["u"][1],
        smin_w=res["w"][2],
        smin=res["u"][2],
        coverage=float(out["u"]["n"][0] / n_proteins) if n_proteins else 0.0,
    )


@dataclass
class CafaScore:
    fmax_w: float  # mean over the namespaces with annotated proteins: the competition's score
    fmax: float
    namespaces: dict[str, NamespaceScore]

    def as_dict(self) -> dict[str, object]:
        return {
            "fmax_w": self.fmax_w,
            "fmax": self.fmax,
            "namespaces": {k: v.as_dict() for k, v in self.namespaces.items()},
        }


def cafa_score(
    ont: Ontology,
    ia: np.ndarray,
    truth: tuple[np.ndarray, np.ndarray],
    pred: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    propagated: bool = False,
) -> CafaScore:
    """The metric on sparse pairs: truth (protein, term index), pred (protein, term index, score); protein ids
    are any integers shared by both sides, term indices index `ont`, `ia` is per ontology term (0 = not
    weighed). Both sides are max-propagated first unless `propagated`. Predictions of proteins without
    annotations in a namespace are ignored there, as CAFA does."""
    ia = np.nan_to_num(np.asarray(ia, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    ia = np.where(ia > 0, ia, 0.0)
    tp_, tt_ = np.asarray(truth[0], dtype=np.int64), np.asarray(truth[1], dtype=np.int64)
    pp_, pt_, ps_ = (np.asarray(a) for a in pred)
    if not propagated:
        tp_, tt_, _ = propagate_truth(ont, tp_, tt_)
        from .ontology import propagate_pairs

        pp_, pt_, ps_ = propagate_pairs(ont, pp_, pt_, ps_)
    pp_, pt_, ps_ = pp_.astype(np.int64), pt_.astype(np.int64), ps_.astype(np.float64)
    namespaces = {}
    aspect_of_truth, aspect_of_pred = ont.aspect[tt_], ont.aspect[pt_]
    aspects = [a for a in ASPECTS if (aspect_of_truth == a).any()]
    aspects += sorted(set(aspect_of_truth.tolist()) - set(ASPECTS))
    n_terms = len(ont)
    for a in aspects:
        m = aspect_of_truth == a
        t_prot, t_term = tp_[m], tt_[m]
        prots, t_rows = np.unique(t_prot, return_inverse=True)
        pm = (aspect_of_pred == a) & np.isin(pp_, prots)
        p_prot, p_term, p_score = pp_[pm], pt_[pm], ps_[pm]
        p_rows = np.searchsorted(prots, p_prot)
        truth_keys = np.unique(t_rows.astype(np.int64) * n_terms + t_term)
        pk = p_rows.astype(np.int64) * n_terms + p_term
        hit = np.isin(pk, truth_keys)
        namespaces[a] = score_namespace(
            a, len(prots), t_rows, ia[t_term], np.ones(len(t_term)), p_rows, p_score, hit, ia[p_term]
        )
    if not namespaces:
        return CafaScore(0.0, 0.0, {})
    return CafaScore(
        float(np.mean([s.fmax_w for s in namespaces.values()])),
        float(np.mean([s.fmax for s in namespaces.values()])),
        namespaces,
    )


def propagate_truth(ont: Ontology, prot: np.ndarray, term: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from .ontology import propagate_pairs

    return propagate_pairs(ont, prot, term, None)


def information_accretion(ont: Ontology, prot: np.ndarray, term: np.ndarray) -> np.ndarray:
    """IA per ontology term from annotations (Wyatt & Radivojac 2013, as CAFA computes IA.tsv):
    IA(t) = -log2 P(t | all parents of t) = -log2 (#proteins with t / #proteins with every parent of t),
    on propagated annotations; 0 for terms no protein has (and for roots: P = 1)."""
    p, t, _ = propagate_truth(ont, prot, term)
    n_terms = len(ont)
    prots, rows = np.unique(p, return_inverse=True)
    # per term: the set of proteins annotated with it
    by_term: dict[int, set[int]] = {}
    for r, tt in zip(rows.tolist(), t.tolist()):
        by_term.setdefault(tt, set()).add(r)
    ia = np.zeros(n_terms)
    for tt, have in by_term.items():
        parents = ont.parents[tt]
        if not parents:
            continue
        both = set.intersection(*(by_term.get(q, set()) for q in parents))
        if both:
            ia[tt] = -np.log2(len(have) / len(both))
    return ia


def score_long(
    protein: np.ndarray, aspect: np.ndarray, score: np.ndarray, truth: np.ndarray, ia: np.ndarray
) -> CafaScore:
    """The metric on one long table of already-propagated (protein, term) rows, each with its aspect, its
    predicted score (0 = not predicted), whether it is a true term and its term's IA (a run's
    predictions/valid.parquet). Each (protein, term) appears once."""
    protein = np.asarray(protein).astype(str)
    aspect = np.asarray(aspect).astype(str)
    score = np.asarray(score, dtype=np.float64)
    truth = np.asarray(truth).astype(bool)
    ia = np.nan_to_num(np.asarray(ia, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    ia = np.where(ia > 0, ia, 0.0)
    namespaces = {}
    present = set(aspect[truth].tolist())
    for a in [x for x in ASPECTS if x in present] + sorted(present - set(ASPECTS)):
        m = aspect == a
        t = m & truth
        prots = np.unique(protein[t])
        pm = m & (score > 0) & np.isin(protein, prots)
        namespaces[a] = score_namespace(
            a,
            len(prots),
            np.searchsorted(prots, protein[t]),
            ia[t],
            np.ones(int(t.sum())),
            np.searchsorted(prots, protein[pm]),
            score[pm],
            truth[pm],
            ia[pm],
        )
    if not namespaces:
        return CafaScore(0.0, 0.0, {})
    return CafaScore(
        float(np.mean([s.fmax_w for s in namespaces.values()])),
        float(np.mean([s.fmax for s in namespaces.values()])),
        namespaces,
    )
