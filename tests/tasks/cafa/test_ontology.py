"""Reading the ontology (obonet) the way CAFA's evaluator does, and max propagation."""

from __future__ import annotations

import numpy as np
import pytest

from molremote.errors import DataError
from molremote.tasks.cafa.ontology import propagate_pairs, read_obo

from .conftest import DEMO


def test_tiny_ontology_keeps_is_a_and_part_of_inside_a_namespace(tiny_obo):
    ont = read_obo(tiny_obo)
    assert "GO:0000005" not in ont.index  # obsolete
    assert ont.canonical("GO:0000009") == ("GO:0000002",)  # alt_id
    assert ont.canonical("GO:0000005") == ()
    anc = {ont.terms[i] for i in ont.ancestors(ont.index["GO:0000002"])}
    assert anc == {"GO:0000002", "GO:0000001", "GO:0000003", "GO:0008150"}  # is_a and part_of
    anc4 = {ont.terms[i] for i in ont.ancestors(ont.index["GO:0000004"])}
    assert anc4 == {"GO:0000004", "GO:0008150"}  # part_of into CC dropped
    anc3 = {ont.terms[i] for i in ont.ancestors(ont.index["GO:0000003"])}
    assert "GO:0000004" not in anc3  # regulates is not followed
    assert ont.aspect[ont.index["GO:0000020"]] == "CC" and ont.aspect[ont.index["GO:0000010"]] == "MF"


def test_propagate_pairs_keeps_the_maximum_over_descendants(tiny_obo):
    ont = read_obo(tiny_obo)
    i = ont.index
    prot = np.array([0, 0, 1])
    term = np.array([i["GO:0000002"], i["GO:0000003"], i["GO:0000010"]])
    p, t, s = propagate_pairs(ont, prot, term, np.array([0.3, 0.7, 0.5]))
    got = {(int(a), ont.terms[b]): float(c) for a, b, c in zip(p, t, s)}
    assert got == {
        (0, "GO:0000002"): 0.3,
        (0, "GO:0000001"): 0.3,
        (0, "GO:0000003"): 0.7,  # its own 0.7 beats the child's 0.3
        (0, "GO:0008150"): 0.7,
        (1, "GO:0000010"): 0.5,
        (1, "GO:0003674"): 0.5,
    }
    assert list(zip(p, t)) == sorted(zip(p, t))  # sorted by (protein, term)


def test_propagation_of_the_demo_annotations_is_closed_and_idempotent():
    ont = read_obo(DEMO / "go-basic.obo")
    rng = np.random.default_rng(0)
    prot = rng.integers(0, 20, 300)
    term = rng.integers(0, len(ont), 300)
    p, t, _ = propagate_pairs(ont, prot, term)
    p2, t2, _ = propagate_pairs(ont, p, t)
    assert np.array_equal(p, p2) and np.array_equal(t, t2)
    have = set(zip(p.tolist(), t.tolist()))
    for a, b in list(have)[:200]:
        assert all((a, int(x)) in have for x in ont.parents[b])


def test_a_broken_obo_file_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "go.obo"
    bad.write_text("this is not\nan ontology\n")
    with pytest.raises(DataError, match="go.obo"):
        read_obo(bad)
    with pytest.raises(DataError, match="not found"):
        read_obo(tmp_path / "missing.obo")
