"""molremote.results.long_format: long-format files (`id<TAB>key<TAB>score`, no header, e.g. CAFA) read, checked,
averaged by (id, key) with missing pairs counting as 0, capped per id, rounded and written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molremote.errors import SubmissionError
from molremote.results.averaging import build_ensemble
from molremote.results.ensemble import infer_task
from molremote.results.long_format import (
    LongFormat,
    average_long,
    check_long_file,
    ensemble_long,
    finish_long,
    read_long,
    round_sig,
)
from molremote.results.submission_files import SubmissionSpec, check_submission
from molremote.tasks import TASKS, TaskEntry
from molremote.tasks.belka.results import BelkaResults

FMT = LongFormat("protein", "term", "score", sig_figs=3, max_per_id=3, key_pattern=r"GO:\d{7}")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def frame(rows: dict[tuple[str, str], float]) -> str:
    return "".join(f"{p}\t{t}\t{s}\n" for (p, t), s in rows.items())


A = {("P1", "GO:0000001"): 0.5, ("P1", "GO:0000002"): 0.25, ("P2", "GO:0000001"): 1.0}
B = {("P2", "GO:0000001"): 0.8, ("P1", "GO:0000002"): 0.75, ("P3", "GO:0000009"): 0.1}  # other order, new pairs
C = {("P1", "GO:0000001"): 0.125, ("P3", "GO:0000009"): 0.3}


def reference(members: list[dict], weights: list[float]) -> dict[tuple[str, str], float]:
    """The weighted mean over the union of pairs, a pair missing from a member counting as 0 for it."""
    w = np.asarray(weights) / sum(weights)
    keys = sorted(set().union(*members))
    return {k: float(sum(wi * m.get(k, 0.0) for wi, m in zip(w, members))) for k in keys}


def as_dict(table) -> dict[tuple[str, str], float]:
    df = table.to_pandas()
    return {(a, b): v for a, b, v in zip(df["id"], df["key"], df["value"])}


def test_average_aligns_by_pair_and_counts_missing_pairs_as_zero(tmp_path):
    files = [write(tmp_path / f"{n}.tsv", frame(m)) for n, m in zip("abc", (A, B, C))]
    weights = [2.0, 1.0, 1.0]
    got = as_dict(average_long(files, FMT, weights))
    want = reference([A, B, C], weights)
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-15), k
    assert got[("P3", "GO:0000009")] == pytest.approx(0.25 * 0.1 + 0.25 * 0.3)  # absent from A: 0 there
    uniform = as_dict(average_long(files, FMT))
    assert uniform[("P1", "GO:0000002")] == pytest.approx((0.25 + 0.75 + 0) / 3)


def test_ensemble_caps_keys_per_id_rounds_and_writes_a_file_that_passes_the_check(tmp_path):
    a = {("P1", f"GO:000000{i}"): s for i, s in enumerate([0.9, 0.8, 0.7, 0.6, 0.5])}
    b = {("P1", f"GO:000000{i}"): s for i, s in enumerate([0.1, 0.2, 0.3, 0.999, 0.5])} | {("P2", "GO:0000001"): 0.5}
    fa, fb = write(tmp_path / "a.tsv", frame(a)), write(tmp_path / "b.tsv", frame(b))
    fmt = LongFormat("protein", "term", "score", sig_figs=3, max_per_id=3, key_pattern=r"GO:\d{7}")
    with pytest.raises(SubmissionError, match=r"a.tsv: 1 protein\(s\) with more than 3 terms: P1 \(5\)"):
        check_long_file(fa, fmt)  # the members themselves are over the cap
    loose = LongFormat("protein", "term", "score", sig_figs=3)
    out, table = ensemble_long([fa, fb], tmp_path / "out.tsv", LongFormat(**{**loose.__dict__, "max_per_id": 3}))
    text = out.read_text()
    assert not text.startswith("protein")  # no header
    rows = [line.split("\t") for line in text.splitlines()]
    p1 = sorted(((float(s), t) for p, t, s in rows if p == "P1"), reverse=True)
    # means 0.5, 0.5, 0.5, 0.7995, 0.5: the 3 highest kept; 0.7995 is the double 0.79949999...: 0.799 at 3
    # significant figures, as printf's "%.3g" writes it
    assert [s for s, _ in p1] == [0.799, 0.5, 0.5] and p1[0][1] == "GO:0000003"
    assert [r for r in rows if r[0] == "P2"] == [["P2", "GO:0000001", "0.25"]]
    check_long_file(out, LongFormat(**{**loose.__dict__, "max_per_id": 3}))
    assert len(table) == 4


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("protein\tterm\tscore\nP1\tGO:0000001\t0.5\n", r"column 3 \(score\) must be a number .* no header line"),
        ("P1\tGO:0000001\t0\n", r"1 score\(s\) outside \(0, 1\]: 0"),
        ("P1\tGO:0000001\t1.5\n", r"outside \(0, 1\]: 1.5 at row\(s\) 1"),
        ("P1\tGO:0000001\t0.5\nP1\tGO:0000002\t0.1234\n", r"more than 3 significant figures: 0.1234 at row\(s\) 2"),
        (
            "P1\tGO:0000001\t0.5\nP1\tGO:0000001\t0.2\n",
            r"1 \(protein, term\) pair\(s\) occur more than once: P1 GO:0000001",
        ),
        ("".join(f"P1\tGO:000000{i}\t0.5\n" for i in range(4)), r"1 protein\(s\) with more than 3 terms: P1 \(4\)"),
        ("P1\tGO:1\t0.5\n", r"1 term\(s\) not matching 'GO:\\\\d\{7\}': GO:1"),
        ("P1\tGO:0000001\n", r"cannot be read as 3 '\\t'-separated columns"),
        ("P1\tGO:0000001\tnan\n", r"1 empty/NaN/inf score\(s\) at row\(s\) 1"),
    ],
)
def test_format_check_names_the_file_and_the_problem(tmp_path, text, error):
    p = write(tmp_path / "sub.tsv", text)
    with pytest.raises(SubmissionError, match=error) as e:
        check_long_file(p, FMT)
    assert str(p) in str(e.value)


def test_a_good_file_passes_and_reads_back(tmp_path):
    p = write(tmp_path / "ok.tsv", frame(A))
    t = check_long_file(p, FMT)
    assert as_dict(t) == A


def test_round_sig_matches_printf_rounding():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.random(20_000), [0.1235, 0.0012345, 0.9995, 1.0, 0.000123456, 0.5]])
    want = np.array([float(f"{x:.3g}") for x in v])
    np.testing.assert_array_equal(round_sig(v, 3), want)


def test_a_spec_that_declares_long_format_is_ensembled_and_checked_as_long(tmp_path):
    spec = SubmissionSpec("longtask", id_col="protein", long=FMT)
    files = [write(tmp_path / f"{n}.tsv", frame(m)) for n, m in zip("ab", (A, B))]
    res = build_ensemble(files, tmp_path / "ens", weights=[3, 1], spec=spec, heatmap=False)
    sub = check_submission(res.submission, spec)  # the long check: a LongTable back
    want = {k: float(f"{v:.3g}") for k, v in reference([A, B], [3, 1]).items()}
    assert as_dict(sub) == pytest.approx(want)
    rec = json.loads(res.record.read_text())
    assert rec["format"] == "long" and rec["weights"] == [0.75, 0.25] and len(rec["members"]) == 2
    assert rec["members"][0]["sha256"] and rec["submission"]["sha256"]
    with pytest.raises(SubmissionError, match="first line 'protein,term,score' is not a longtask row"):
        from molremote.results.submission_files import check_header

        check_header(tmp_path / "x", ["protein", "term", "score"], spec)


def test_reading_keeps_strings_as_codes_into_vocabularies(tmp_path):
    p = write(tmp_path / "a.tsv", frame(A))
    t = read_long(p, FMT)
    assert t.ids.dtype == np.int32 and t.keys.dtype == np.int32 and sorted(t.id_vocab.to_pylist()) == ["P1", "P2"]
    assert finish_long(t, FMT).values.tolist() == [0.5, 0.25, 1.0]
    df = pd.read_csv(p, sep="\t", header=None)
    assert len(df) == len(t)


class LongTaskResults(BelkaResults):
    """A task whose submission is long-format (registered by one test only; the CAFA task declares its own)."""

    name = "longtask"
    competition = None

    def submission_spec(self, n_values: int | None = None) -> SubmissionSpec:
        return SubmissionSpec("longtask", id_col="protein", long=FMT)


def test_ensemble_command_on_long_files_infers_the_task_and_writes_the_long_mean(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from molremote.cli import app

    monkeypatch.setitem(
        TASKS,
        "longtask",
        TaskEntry(TASKS["belka"].params, TASKS["belka"].impl, "tests.results.test_long_format:LongTaskResults"),
    )
    # these GO-term rows fit the registered CAFA task's format too (tests/tasks/cafa/test_cli.py infers cafa
    # from its own files): leave it out so the inference has one candidate
    monkeypatch.delitem(TASKS, "cafa", raising=False)
    files = [write(tmp_path / f"{n}.tsv", frame(m)) for n, m in zip("ab", (A, B))]
    assert infer_task(files) == "longtask"  # recognised from the first row (no header)
    args = ["ensemble", "-i", str(files[0]), "-i", str(files[1]), "-w", "1,3", "-o", str(tmp_path / "out"), "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
    out = json.loads(res.stdout)
    assert out["task"] == "longtask" and out["weights"] == [0.25, 0.75]
    got = as_dict(check_long_file(out["submission"], FMT))
    assert got == pytest.approx({k: float(f"{v:.3g}") for k, v in reference([A, B], [1, 3]).items()})
