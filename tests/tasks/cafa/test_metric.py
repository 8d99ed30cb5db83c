"""molremote's CAFA metric against CAFA's own evaluator (`cafaeval`, GPL-3, a test-only dependency: its files
are written to tmp_path and it runs as a black box), on random predictions and on the demo data, to 1e-9; and
on a case small enough to compute by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from cafaeval.evaluation import cafa_eval  # the `test` extra installs it (GPL-3: a test-only oracle)

from molremote.tasks.cafa.data import read_cafa
from molremote.tasks.cafa.metric import cafa_score, information_accretion, score_long
from molremote.tasks.cafa.ontology import Ontology, propagate_pairs, read_obo

from .conftest import DEMO

NS = {"biological_process": "BP", "molecular_function": "MF", "cellular_component": "CC"}


def oracle(tmp: Path, obo: Path, ont: Ontology, ia: np.ndarray, truth, pred) -> dict[str, dict[str, float]]:
    """cafaeval on the same inputs: per namespace f_w, f (best), s and s_w (minimum over thresholds)."""
    (tmp / "pred").mkdir()
    with open(tmp / "gt.tsv", "w") as f:
        f.writelines(f"P{p}\t{ont.terms[t]}\n" for p, t in zip(*truth))
    with open(tmp / "pred" / "m.tsv", "w") as f:
        f.writelines(f"P{p}\t{ont.terms[t]}\t{float(s)!r}\n" for p, t, s in zip(*pred))
    with open(tmp / "ia.tsv", "w") as f:
        f.writelines(f"{t}\t{float(v)!r}\n" for t, v in zip(ont.terms, ia))
    df, best = cafa_eval(
        str(obo),
        str(tmp / "pred"),
        str(tmp / "gt.tsv"),
        ia=str(tmp / "ia.tsv"),
        prop="max",
        norm="cafa",
        th_step=0.01,
        n_cpu=1,
    )
    out: dict[str, dict[str, float]] = {}
    for (_, ns, _), row in best["f_w"].iterrows():
        out.setdefault(NS[ns], {})["f_w"] = row["f_w"]
    for (_, ns, _), row in best["f"].iterrows():
        out[NS[ns]]["f"] = row["f"]
    for ns, sub in df.groupby(level="ns"):
        out[NS[ns]]["s"] = sub["s"].min()
        out[NS[ns]]["s_w"] = sub["s_w"].min()
    return out


def assert_equal(ours, theirs) -> None:
    assert set(ours.namespaces) == set(theirs)
    for a, t in theirs.items():
        s = ours.namespaces[a]
        assert s.fmax_w == pytest.approx(t["f_w"], abs=1e-9), a
        assert s.fmax == pytest.approx(t["f"], abs=1e-9), a
        assert s.smin == pytest.approx(t["s"], abs=1e-9), a
        assert s.smin_w == pytest.approx(t["s_w"], abs=1e-9), a


@pytest.mark.parametrize("seed", [0, 1])
def test_random_predictions_equal_cafaeval(tmp_path, seed):
    obo = DEMO / "go-basic.obo"
    ont = read_obo(obo)
    rng = np.random.default_rng(seed)
    ia = np.where(rng.random(len(ont)) < 0.3, 0.0, rng.exponential(2.0, len(ont)))  # some IA = 0 terms
    n_prot = 40
    truth = (rng.integers(0, n_prot, 300), rng.integers(0, len(ont), 300))
    k = rng.choice(300, 150)  # some predictions hit true terms, others not; some proteins are unannotated
    pp = np.r_[truth[0][k], rng.integers(0, n_prot + 5, 2000)]
    pt = np.r_[truth[1][k], rng.integers(0, len(ont), 2000)]
    ps = np.r_[rng.random(150), rng.random(2000) ** 3]  # many low scores; unrounded floats
    ours = cafa_score(ont, ia, truth, (pp, pt, ps))
    assert_equal(ours, oracle(tmp_path, obo, ont, ia, truth, (pp, pt, ps)))


def test_demo_naive_and_noisy_predictions_equal_cafaeval(tmp_path):
    """The demo's own files (its IA.tsv, propagated annotations) with the naive baseline of a split, blurred."""
    d = read_cafa(DEMO)
    n = len(d.train.ids)
    valid = np.arange(0, n, 5)
    train = np.setdiff1d(np.arange(n), valid)
    m = np.isin(d.truth_prot, valid)
    truth = (d.truth_prot[m], d.truth_term[m])
    tm = np.isin(d.truth_prot, train)
    freq = np.bincount(d.truth_term[tm], minlength=len(d.ont)) / len(train)
    terms = np.flatnonzero(freq > 0)
    rng = np.random.default_rng(3)
    pp = np.repeat(valid, len(terms))
    pt = np.tile(terms, len(valid))
    ps = np.clip(np.tile(freq[terms], len(valid)) + rng.normal(0, 0.05, len(pp)), 0.001, 1.0)
    ours = cafa_score(d.ont, d.ia, truth, (pp, pt, ps))
    assert ours.fmax_w > 0.3  # frequency scores of kinases are far from random
    assert_equal(ours, oracle(tmp_path, DEMO / "go-basic.obo", d.ont, d.ia, truth, (pp, pt, ps)))


def test_a_case_computed_by_hand(tiny_obo):
    """One BP protein, truth {b2} -> propagated {b2, b1, b3, root}; IA b2=2, b1=1, b3=1, root=0.
    Prediction b1 0.8, b4 0.4 (wrong, IA 3): at tau <= 0.4: predicted {b1, root, b4}, weighted
    pr = 1 / (1 + 3) = 0.25, rc = 1 / 4; above 0.4 up to 0.8: {b1, root}: pr = 1, rc = 0.25 -> F = 0.4."""
    ont = read_obo(tiny_obo)
    i = ont.index
    ia = np.zeros(len(ont))
    ia[[i["GO:0000002"], i["GO:0000001"], i["GO:0000003"], i["GO:0000004"]]] = [2, 1, 1, 3]
    s = cafa_score(
        ont,
        ia,
        (np.array([0]), np.array([i["GO:0000002"]])),
        (np.array([0, 0]), np.array([i["GO:0000001"], i["GO:0000004"]]), np.array([0.8, 0.4])),
    )
    bp = s.namespaces["BP"]
    assert list(s.namespaces) == ["BP"]
    assert bp.fmax_w == pytest.approx(0.4) and bp.tau_w == pytest.approx(0.41)
    # unweighted at tau 0.41: {b1, root} of {b2, b1, b3, root}: pr 1, rc 0.5
    assert bp.fmax == pytest.approx(2 * 0.5 / 1.5)
    # S (weighted) at 0.41: ru = IA(b2) + IA(b3) = 3, mi = 0 -> 3; at 0.01: ru 3, mi 3
    assert bp.smin_w == pytest.approx(3.0)
    assert s.fmax_w == pytest.approx(0.4)


def test_score_long_equals_the_pair_form_on_propagated_rows():
    d = read_cafa(DEMO)
    valid = np.arange(0, len(d.train.ids), 4)
    m = np.isin(d.truth_prot, valid)
    rng = np.random.default_rng(5)
    pp, pt, ps = propagate_pairs(d.ont, rng.choice(valid, 500), rng.integers(0, len(d.ont), 500), rng.random(500))
    ref = cafa_score(d.ont, d.ia, (d.truth_prot[m], d.truth_term[m]), (pp, pt, ps), propagated=True)
    n = len(d.ont)
    pk, tk = pp * n + pt, d.truth_prot[m] * n + d.truth_term[m]
    keys = np.union1d(pk, tk)
    score = np.zeros(len(keys))
    score[np.searchsorted(keys, pk)] = ps
    got = score_long((keys // n).astype(str), d.ont.aspect[keys % n], score, np.isin(keys, tk), d.ia[keys % n])
    assert got.fmax_w == pytest.approx(ref.fmax_w, abs=1e-12)
    for a in ref.namespaces:
        assert got.namespaces[a].smin_w == pytest.approx(ref.namespaces[a].smin_w, abs=1e-12)


def test_information_accretion_by_hand(tiny_obo):
    """4 proteins: all have b1 (so root), 1 has b2 (parents b1 and b3); 2 have b3 -> P(b2 | b1, b3) = 1/2."""
    ont = read_obo(tiny_obo)
    i = ont.index
    prot = np.array([0, 1, 2, 3, 0, 1])
    term = np.array([i["GO:0000001"]] * 4 + [i["GO:0000002"], i["GO:0000003"]])
    ia = information_accretion(ont, prot, term)
    assert ia[i["GO:0000002"]] == pytest.approx(1.0)  # -log2(1/2): proteins with b1 and b3 are 0 and 1
    assert ia[i["GO:0000001"]] == pytest.approx(0.0)  # everyone with the root has b1
    assert ia[i["GO:0000003"]] == pytest.approx(-math.log2(2 / 4))
    assert ia[i["GO:0008150"]] == 0.0  # a root


def test_shipped_ia_is_positive_where_terms_are_informative():
    d = read_cafa(DEMO)
    roots = [d.ont.index[t] for t in ("GO:0008150", "GO:0003674", "GO:0005575")]
    assert (d.ia[roots] == 0).all()
    assert (d.ia >= 0).all() and (d.ia > 0).mean() > 0.5
