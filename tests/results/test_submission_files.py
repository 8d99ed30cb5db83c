"""molremote.results.submission_files: format specs, checks with clear messages, atomic writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from molremote.errors import SubmissionError
from molremote.results.submission_files import (
    check_submission,
    generic_spec,
    read_predictions,
    write_submission_atomic,
)
from molremote.tasks.belka.results import SUBMISSION as BELKA
from molremote.tasks.text2mol.results import submission_spec as text2mol_spec


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def belka_file(tmp_path: Path) -> Path:
    return write(tmp_path / "sub.csv", "id,binds\n10,0.5\n11,0.0\n12,1\n13,0.25\n")


def refused(path: Path, spec=BELKA, **kw) -> str:
    with pytest.raises(SubmissionError) as e:
        check_submission(path, spec, **kw)
    msg = str(e.value)
    assert str(path) in msg  # every message names the file
    return msg


def test_valid_belka_file_reads_ids_and_values(belka_file: Path):
    p = check_submission(belka_file, BELKA, expected_ids=[13, 12, 11, 10])
    assert p.ids.tolist() == [10, 11, 12, 13] and p.ids.dtype == np.int64
    assert p.values[:, 0].tolist() == [0.5, 0.0, 1.0, 0.25]
    assert p.columns == ("binds",) and p.id_col == "id"


def test_wrong_header_and_column_order_refused(tmp_path: Path):
    msg = refused(write(tmp_path / "a.csv", "id,bind\n1,0.5\n"))
    assert "wrong header" in msg and "missing column(s) binds" in msg and "unexpected column(s) bind" in msg
    msg = refused(write(tmp_path / "b.csv", "binds,id\n0.5,1\n"))
    assert "wrong order" in msg
    msg = refused(write(tmp_path / "c.csv", ""))
    assert "empty file" in msg


def test_truncated_file_refused(tmp_path: Path, belka_file: Path):
    text = belka_file.read_text()
    # cut mid-line: the last row lost its value column
    msg = refused(write(tmp_path / "cut.csv", text[: text.rindex(",")]))
    assert "cannot be read as CSV" in msg and "Expected 2 columns, got 1" in msg
    # cut at a line end: rows missing, found by the expected id set
    msg = refused(write(tmp_path / "short.csv", "id,binds\n10,0.5\n11,0.0\n"), expected_ids=[10, 11, 12, 13])
    assert "2 rows, expected 4" in msg and "2 expected id(s) missing: 12, 13" in msg
    msg = refused(write(tmp_path / "short2.csv", "id,binds\n10,0.5\n"), n_rows=4)
    assert "1 data rows, expected 4" in msg


def test_extra_and_duplicate_ids_refused(tmp_path: Path):
    msg = refused(write(tmp_path / "x.csv", "id,binds\n10,0.5\n11,0.1\n99,0.2\n"), expected_ids=[10, 11, 12])
    assert "1 expected id(s) missing: 12" in msg and "1 unexpected id(s): 99" in msg
    msg = refused(write(tmp_path / "d.csv", "id,binds\n10,0.5\n11,0.1\n10,0.2\n11,0.3\n12,0\n"))
    assert "column 'id' has 2 duplicated id(s): 10, 11" in msg


@pytest.mark.parametrize("bad, shown", [("nan", "nan"), ("", "nan"), ("inf", "inf"), ("-inf", "-inf")])
def test_nan_and_inf_refused(tmp_path: Path, bad: str, shown: str):
    msg = refused(write(tmp_path / "n.csv", f"id,binds\n10,0.5\n11,{bad}\n12,0.1\n"))
    assert "column 'binds' has 1 empty/NaN/inf value(s), id(s) 11 (data rows 2)" in msg and shown in msg


def test_out_of_range_and_non_numeric_refused(tmp_path: Path):
    msg = refused(write(tmp_path / "r.csv", "id,binds\n10,1.5\n11,-0.1\n12,0.1\n"))
    assert "column 'binds' has 2 value(s) outside [0.0, 1.0]: 1.5, -0.1 at id(s) 10, 11" in msg
    msg = refused(write(tmp_path / "s.csv", "id,binds\n10,0.5\n11,abc\n"))
    assert "column 'binds'" in msg and "abc" in msg
    msg = refused(write(tmp_path / "i.csv", "id,binds\n10,0.5\nx7,0.1\n"))
    assert "column 'id'" in msg and "x7" in msg


def test_text2mol_spec(tmp_path: Path):
    ok = write(tmp_path / "t.csv", "ID,0,1,2\n0,0.1,-0.3,0.9\n1,0.2,0.5,-1.5\n")
    p = check_submission(ok, text2mol_spec(3), expected_ids=[0, 1])
    assert p.values.shape == (2, 3) and p.columns == ("0", "1", "2")
    check_submission(ok, text2mol_spec())  # any number of molecules
    msg = refused(write(tmp_path / "o.csv", "ID,0,2,1\n0,0.1,0.2,0.3\n"), text2mol_spec())
    assert "numbered 0..2" in msg and "3='2' (expected '1'), 4='1' (expected '2')" in msg
    msg = refused(ok, text2mol_spec(4))
    assert "wrong header" in msg and "missing column(s) 3" in msg
    msg = refused(write(tmp_path / "id.csv", "id,0\n0,0.1\n"), text2mol_spec())
    assert "first column must be 'ID'" in msg


def test_generic_spec_string_ids(tmp_path: Path):
    spec = generic_spec("sig_id", ["t_a", "t_b"], id_type="str", value_range=(0.0, 1.0))
    f = write(tmp_path / "moa.csv", "sig_id,t_a,t_b\nid_b,0.1,0.2\nid_a,0.3,0.4\n")
    p = check_submission(f, spec, expected_ids=["id_a", "id_b"])
    assert p.ids.tolist() == ["id_b", "id_a"]
    msg = refused(f, spec, expected_ids=["id_a", "id_c"])
    assert "1 expected id(s) missing: id_c" in msg and "1 unexpected id(s): id_b" in msg
    msg = refused(write(tmp_path / "moa2.csv", "sig_id,t_a,t_b\nid_a,0.1,1.2\n"), spec)
    assert "column 't_b'" in msg and "1.2" in msg
    any_cols = generic_spec("key")
    assert check_submission(f, generic_spec("sig_id")).values.shape == (2, 2)
    assert "first column must be 'key'" in refused(f, any_cols)


def test_parquet_predictions_with_extra_columns(tmp_path: Path):
    import pyarrow.parquet as pq

    path = tmp_path / "test.parquet"
    pq.write_table(pa.table({"id": [3, 1, 2], "binds": [0.1, 0.2, 0.3], "protein": ["a", "b", "c"]}), path)
    p = read_predictions(path, BELKA)
    assert p.columns == ("binds",) and p.ids.tolist() == [3, 1, 2]
    p = read_predictions(path, id_col="id", columns=["binds"])
    assert p.values[:, 0].tolist() == [0.1, 0.2, 0.3]


def test_write_atomic_refuses_overwrite_and_bad_data(tmp_path: Path):
    path = tmp_path / "out" / "submission.csv"
    t = pa.table({"id": [2, 1], "binds": pa.array([0.25, 0.5], pa.float32())})
    write_submission_atomic(t, path, spec=BELKA)
    assert path.read_text() == "id,binds\n2,0.25\n1,0.5\n"  # header unquoted, as Kaggle's samples
    before = path.read_bytes()
    with pytest.raises(SubmissionError, match="already exists"):
        write_submission_atomic(t, path, spec=BELKA)
    bad = pa.table({"id": [2, 1], "binds": [0.25, float("nan")]})
    with pytest.raises(SubmissionError, match=r"submission.csv: column 'binds' has 1 empty/NaN/inf"):
        write_submission_atomic(bad, path, spec=BELKA, overwrite=True)
    with pytest.raises(SubmissionError, match="expected id.s. missing: 3"):
        write_submission_atomic(t, path, spec=BELKA, overwrite=True, expected_ids=[1, 2, 3])
    assert path.read_bytes() == before  # nothing already written lost
    assert [p.name for p in path.parent.iterdir()] == ["submission.csv"]  # no temp files left
    import pandas as pd

    write_submission_atomic(pd.DataFrame({"id": [1, 2], "binds": [0.75, 1.0]}), path, spec=BELKA, overwrite=True)
    assert check_submission(path, BELKA).values[:, 0].tolist() == [0.75, 1.0]


def test_belka_size_file_is_checked_whole(tmp_path: Path):
    """A file of BELKA's test size passes with the expected ids, and one missing id among 1.67M is found (how
    fast: benchmarks/submission_check.py, ~2x a bare pyarrow read)."""
    n = 1_674_896  # BELKA's test rows
    rng = np.random.default_rng(0)
    ids = rng.permutation(np.arange(295_246_830, 295_246_830 + n))
    binds = rng.random(n).astype(np.float32)
    path = write_submission_atomic(pa.table({"id": ids, "binds": binds}), tmp_path / "big.csv")
    p = check_submission(path, BELKA, expected_ids=np.sort(ids))
    assert len(p) == n
    short = write_submission_atomic(pa.table({"id": ids[1:], "binds": binds[1:]}), tmp_path / "short.csv")
    with pytest.raises(SubmissionError, match=str(ids[0])):
        check_submission(short, BELKA, expected_ids=np.sort(ids))
