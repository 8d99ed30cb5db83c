"""Reading the CAFA files: the shipped demo, UniProt headers, and bad files refused naming file, line and value."""

from __future__ import annotations

import numpy as np
import pytest

from molremote.errors import DataError
from molremote.tasks import get_task
from molremote.tasks.cafa.data import accession, read_cafa, read_fasta, read_terms

from .conftest import DEMO, cafa_exp


def test_the_demo_reads_with_real_kinases_and_propagated_annotations():
    d = read_cafa(DEMO)
    assert len(d.train.ids) == 150 and len(d.test.ids) == 38
    assert set(d.test.taxa) == {"9606"} and set(d.train.taxa) == {"9606"}  # header / train_taxonomy.tsv
    assert not set(d.train.ids) & set(d.test.ids)
    assert all(s.isalpha() and s.isupper() for s in d.train.sequences)
    # every annotated protein carries its namespace roots after propagation
    root_bp = d.ont.index["GO:0008150"]
    bp = d.ont.aspect[d.truth_term] == "BP"
    assert set(d.truth_prot[bp]) == set(d.truth_prot[d.truth_term == root_bp])
    assert len(d.truth_term) > 3 * 3576  # propagation adds the ancestors of the 3,576 curated annotations
    assert d.dropped_terms == 0  # the builder kept only terms of the shipped ontology


def test_uniprot_headers_give_the_accession():
    assert accession("sp|P9WHI7|RECN_MYCT") == "P9WHI7"
    assert accession("tr|A0A0C5B5G6|X_HUMAN") == "A0A0C5B5G6"
    assert accession("A0A0C5B5G6") == "A0A0C5B5G6"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("ACDE\n", "not a FASTA file"),
        (">sp|P1|A_H x\nACDE\n>sp|P1|A_H y\nKLMN\n", "record 2: accession P1 repeats record 1"),
        (">P2 9606\nAC1DE\n", r"record 1 \(P2\): not a protein sequence \(characters \['1'\]\)"),
        (">P3\n\n>P4\nAAA\n", r"record 1 \(P3\): empty sequence"),
    ],
)
def test_bad_fasta_is_refused_naming_the_record(tmp_path, text, match):
    p = tmp_path / "x.fasta"
    p.write_text(text)
    with pytest.raises(DataError, match=match) as e:
        read_fasta(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("EntryID\tterm\n", r"lacks column\(s\) \['aspect'\]"),
        ("EntryID\tterm\taspect\nP1\tGO:0000001\tP\nP2\tGO:0000002\tX\n", "line 3: aspect 'X' is not one of P, F, C"),
        ("EntryID\tterm\taspect\nP1\tGO:1\tF\n", "line 2: term 'GO:1' is not a GO id"),
        ("EntryID\tterm\taspect\nP1\t\tF\n", "line 2: empty term"),
    ],
)
def test_bad_train_terms_are_refused_naming_the_line(tmp_path, text, match):
    p = tmp_path / "train_terms.tsv"
    p.write_text(text)
    with pytest.raises(DataError, match=match):
        read_terms(p)


def test_cafa5_aspect_codes_are_read_too(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("EntryID\tterm\taspect\nP1\tGO:0000001\tBPO\nP1\tGO:0000002\tCCO\n")
    assert read_terms(p)[2].tolist() == ["BP", "CC"]


def test_terms_of_proteins_without_a_sequence_and_bad_ia_are_refused(cafa_copy):
    with open(cafa_copy / "train_terms.tsv", "a") as f:
        f.write("Q99999\tGO:0005634\tC\n")
    with pytest.raises(DataError, match=r"train_terms.tsv: line \d+: 1 EntryID\(s\) without a sequence .*Q99999"):
        read_cafa(cafa_copy)
    lines = (cafa_copy / "train_terms.tsv").read_text().splitlines()[:-1]
    (cafa_copy / "train_terms.tsv").write_text("\n".join(lines) + "\n")
    with open(cafa_copy / "IA.tsv", "a") as f:
        f.write("GO:0005634\tmany\n")
    with pytest.raises(DataError, match=r"IA.tsv: line \d+: IA 'many' of GO:0005634 is not a number"):
        read_cafa(cafa_copy)


def test_label_space_is_the_top_k_per_namespace_and_folds_cover_every_protein():
    t = get_task(cafa_exp(top_k_bp=50, top_k_mf=20, top_k_cc=10, folds={"n_folds": 5, "scheme": "random", "seed": 3}))
    t.load()
    assert t.aspect_sizes == [50, 20, 10] and t.y.shape == (150, 80)
    ont, counts = t.data.ont, np.bincount(t.data.truth_term, minlength=len(t.data.ont))
    bp = t.labels[:50]
    assert (ont.aspect[bp] == "BP").all()
    others = np.setdiff1d(np.flatnonzero(ont.aspect == "BP"), bp)
    assert counts[bp].min() >= counts[others].max()  # the most frequent BP terms
    root = int(np.flatnonzero(t.labels == ont.index["GO:0008150"])[0])
    assert t.y[:, root].sum() == len(np.unique(t.data.truth_prot[ont.aspect[t.data.truth_term] == "BP"]))
    f = t.fold_assignment()
    assert sorted(np.bincount(f).tolist()) == [30] * 5
    again = get_task(cafa_exp(folds={"n_folds": 5, "scheme": "random", "seed": 3}))
    again.load()
    assert np.array_equal(again.fold_assignment(), f)  # a pure function of the seed
    tr, va = t.split(2)
    assert not set(tr) & set(va) and len(tr) + len(va) == 150


def test_an_unknown_fold_scheme_is_refused():
    from molremote.errors import ExperimentError

    t = get_task(cafa_exp(folds={"n_folds": 5, "scheme": "species"}))
    t.load()
    with pytest.raises(ExperimentError, match="scheme 'species' unknown"):
        t.fold_assignment()
