"""The long-format submission: written within the rules, and bad files refused naming the line."""

from __future__ import annotations

import numpy as np
import pytest

from molremote.errors import SubmissionError
from molremote.tasks.cafa.results import average_long
from molremote.tasks.cafa.submission import check_long, top_per_protein, write_long


def test_written_file_keeps_the_rules(tmp_path):
    prot = np.repeat(["P1", "P2", "P3"], [20, 5, 1])
    term = np.array([f"GO:{i:07d}" for i in range(26)])
    score = np.r_[np.linspace(0.05, 0.95, 20), [0.99971, 0.0004, 0.123456, 0.5, 0.25], [0.7]]
    p = tmp_path / "submission.tsv"
    n = write_long(p, prot, term, score, max_terms=10)
    rows = [ln.split("\t") for ln in p.read_text().splitlines()]
    assert n == len(rows) == 10 + 4 + 1  # P1 capped at 10; P2's 0.0004 dropped (below 0.001)
    assert all(len(r) == 3 for r in rows)
    got = {(a, b): c for a, b, c in rows}
    assert got[("P2", "GO:0000020")] == "1"  # 0.99971 rounds to 1
    assert ("P2", "GO:0000021") not in got
    assert got[("P2", "GO:0000022")] == "0.123"  # 3 significant figures
    p1 = [(b, float(c)) for a, b, c in rows if a == "P1"]
    assert [b for b, _ in p1] == [f"GO:{i:07d}" for i in range(19, 9, -1)]  # the 10 best, best first
    assert check_long(p) == {"lines": 15, "proteins": 3, "max_terms": 10}
    with pytest.raises(SubmissionError, match="line 11: protein P1 has 20 terms, more than the 10 allowed"):
        check_long(p.with_name("all.tsv") if write_long(p.with_name("all.tsv"), prot, term, score) else p, max_terms=10)


GOOD = "P1\tGO:0000001\t0.5\nP1\tGO:0000002\t1\nP2\tGO:0000001\t0.00123\n"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("EntryID\tterm\tscore\n" + GOOD, r"line 1: score 'score' is not a score .*no header line"),
        (GOOD + "P3\tGO:0000001\n", r"line 4: 2 tab-separated field\(s\), expected 3"),
        (GOOD + "P3\tGO:0000001\t0.5\textra\n", r"line 4: 4 tab-separated field\(s\)"),
        (GOOD + "P3\tGO:0000001\t0\n", r"line 4: score '0' is not a score in \(0, 1\]"),
        (GOOD + "P3\tGO:0000001\t1.5\n", r"line 4: score '1.5' is not a score"),
        (GOOD + "P3\tGO:0000001\t0.1234\n", r"line 4: score '0.1234' is not a score .*3 significant figures"),
        (GOOD + "P3\tGO:0000001\t-0.1\n", r"line 4: score '-0.1'"),
        (GOOD + "P3\tgo:0000001\t0.5\n", r"line 4: term 'go:0000001' is not a GO term id"),
        (GOOD + "\tGO:0000001\t0.5\n", r"line 4: protein '' is empty"),
        (GOOD + "P1\tGO:0000001\t0.7\n", r"line 4: \(P1, GO:0000001\) repeats an earlier line"),
        ("", "empty file"),
    ],
)
def test_bad_files_are_refused_naming_the_line(tmp_path, text, match):
    p = tmp_path / "sub.tsv"
    p.write_text(text)
    with pytest.raises(SubmissionError, match=match) as e:
        check_long(p)
    assert str(p) in str(e.value)


def test_good_forms_of_scores_pass_and_proteins_outside_the_test_set_are_refused(tmp_path):
    p = tmp_path / "s.tsv"
    p.write_text(GOOD + "P3\tGO:0000001\t.25\nP3\tGO:0000002\t1.00\nP3\tGO:0000003\t5e-04\nP3\tGO:0000004\t0.100\n")
    assert check_long(p)["lines"] == 7
    with pytest.raises(SubmissionError, match="line 4: protein 'P3' is not in the test superset"):
        check_long(p, proteins=np.array(["P1", "P2"]))


def test_top_per_protein_orders_and_caps():
    p, t, s = top_per_protein(np.array([2, 1, 1, 1]), np.array([5, 6, 7, 8]), np.array([0.3, 0.2, 0.9, 0.00049]), 1)
    assert p.tolist() == [1, 2] and t.tolist() == [7, 5] and s.tolist() == [0.9, 0.3]


def test_average_long_counts_missing_pairs_as_zero():
    a = (np.array(["P1", "P1"]), np.array(["GO:1", "GO:2"]), np.array([0.8, 0.4]))
    b = (np.array(["P1", "P2"]), np.array(["GO:1", "GO:1"]), np.array([0.4, 0.6]))
    p, t, s = average_long([a, b])
    got = dict(zip(zip(p.tolist(), t.tolist()), s.tolist()))
    assert got == pytest.approx({("P1", "GO:1"): 0.6, ("P1", "GO:2"): 0.2, ("P2", "GO:1"): 0.3})
    p, t, s = average_long([a, b], weights=[3, 1])
    assert dict(zip(zip(p.tolist(), t.tolist()), s.tolist()))[("P1", "GO:2")] == pytest.approx(0.3)
