"""BELKA full-scale preparation: wide arrays match an independent pandas pivot, batch boundaries and
interruption do not change a byte, bad rows are refused naming row id and value."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from molremote.errors import DataError
from molremote.tasks.belka import synth as belka_synth
from molremote.tasks.belka.prepare import ABSENT, PrepareError, prepare, prepare_dir
from molremote.tasks.belka.tokens import encode

ARRAYS = ("tokens.u8", "labels.u8", "ids.i64", "bb.i32")


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("raw")
    # 60-molecule chunks -> row groups of 180 rows: resuming starts inside the file, not at its top
    belka_synth.write(d / "train.parquet", 400, split="train", seed=1, chunk_molecules=60, positive_rate=0.05)
    belka_synth.write(d / "test.parquet", 150, split="test", seed=2, chunk_molecules=60)
    return d


def arrays(out: Path) -> dict[str, np.ndarray]:
    meta = json.loads((out / "meta.json").read_text())
    res = {name: np.fromfile(out / name, dtype=a["dtype"]).reshape(a["shape"]) for name, a in meta["arrays"].items()}
    res["vocab"] = np.array(json.loads((out / "bb_vocab.json").read_text()))
    return res


@pytest.fixture(scope="module")
def reference(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "train"
    prepare(raw / "train.parquet", out, "train", batch_rows=1 << 20, progress=False)
    return out


def test_wide_arrays_match_a_pandas_pivot(raw, reference):
    df = pd.read_parquet(raw / "train.parquet")
    a = arrays(reference)
    mols = df["molecule_smiles"].drop_duplicates().tolist()  # first appearance order
    assert len(a["tokens.u8"]) == len(mols) == 400
    assert (a["tokens.u8"] == encode(mols)).all()
    prot = {"BRD4": 0, "HSA": 1, "sEH": 2}
    m = df["molecule_smiles"].map({s: i for i, s in enumerate(mols)}).to_numpy()
    p = df["protein_name"].map(prot).to_numpy()
    assert (a["labels.u8"][m, p] == df["binds"].to_numpy()).all()
    assert (a["ids.i64"][m, p] == df["id"].to_numpy()).all()
    assert (a["labels.u8"] != ABSENT).all()  # train: every molecule has all three proteins
    first = df.groupby("molecule_smiles", sort=False).first().loc[mols]
    for j in range(3):
        assert (a["vocab"][a["bb.i32"][:, j]] == first[f"buildingblock{j + 1}_smiles"].to_numpy()).all()
    meta = json.loads((reference / "meta.json").read_text())
    assert meta["positives"] == {k: int(df.loc[df.protein_name == k, "binds"].sum()) for k in prot}
    assert meta["n"] == 400 and meta["n_rows"] == 1200 and not (reference / "progress.json").exists()


@pytest.mark.parametrize("batch_rows", [1, 2, 4, 7, 100])
def test_molecules_spanning_batch_boundaries_give_identical_arrays(raw, reference, tmp_path, batch_rows):
    # batch sizes not divisible by 3 cut molecules in two; batch_rows=1 and 2 spread one over 2-3 batches
    if batch_rows == 1:
        src = tmp_path / "small.parquet"  # keep the 1-row case quick
        pq.write_table(pq.read_table(raw / "train.parquet").slice(0, 90), src)
        ref = tmp_path / "ref1"
        prepare(src, ref, "train", batch_rows=1 << 20, progress=False)
    else:
        src, ref = raw / "train.parquet", reference
    out = tmp_path / "out"
    prepare(src, out, "train", batch_rows=batch_rows, progress=False)
    got, want = arrays(out), arrays(ref)
    for k in (*ARRAYS, "vocab"):
        assert np.array_equal(got[k], want[k]), k


def test_interrupted_then_resumed_gives_identical_arrays(raw, reference, tmp_path):
    out = tmp_path / "out"
    part = prepare(raw / "train.parquet", out, "train", batch_rows=50, progress=False, max_batches=9, checkpoint_s=0)
    assert part["status"] == "incomplete" and 0 < part["molecules"] < 400
    prog = json.loads((out / "progress.json").read_text())
    assert prog["state"]["batches"] == 9 and prog["state"]["rows_done"] == part["rows_done"]
    assert not (out / "meta.json").exists()
    # continue in another batch size: the resume point is a row, re-read from its row group
    part2 = prepare(raw / "train.parquet", out, "train", batch_rows=37, progress=False, max_batches=14)
    assert part2["status"] == "incomplete" and part2["rows_done"] > part["rows_done"]
    meta = prepare(raw / "train.parquet", out, "train", batch_rows=64, progress=False)
    assert meta["status"] == "complete" and not (out / "progress.json").exists()
    got, want = arrays(out), arrays(reference)
    for k in (*ARRAYS, "vocab"):
        assert np.array_equal(got[k], want[k]), k
    # complete: a rerun is a no-op returning the same meta
    assert prepare(raw / "train.parquet", out, "train", progress=False)["created_at"] == meta["created_at"]


def test_progress_of_another_input_is_refused(raw, tmp_path):
    out = tmp_path / "out"
    prepare(raw / "train.parquet", out, "train", batch_rows=50, progress=False, max_batches=2)
    with pytest.raises(DataError, match="another input or parameters"):
        prepare(raw / "train.parquet", out, "train", max_length=150, progress=False)


def _write(tmp_path: Path, rows: list[tuple], name="t.parquet") -> Path:
    df = pd.DataFrame(rows, columns=["id", "molecule_smiles", "protein_name", "binds"])
    for j in (1, 2, 3):
        df[f"buildingblock{j}_smiles"] = "C" * j
    p = tmp_path / name
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), p)
    return p


def test_unknown_character_names_row_id_and_character(tmp_path):
    p = _write(
        tmp_path, [(10, "CCO", "BRD4", 0), (11, "CCO", "HSA", 1), (12, "CC%Cl", "BRD4", 0), (13, "CC%Cl", "HSA", 0)]
    )
    with pytest.raises(PrepareError) as e:
        prepare(p, tmp_path / "out", "train", progress=False, batch_rows=3)
    assert e.value.row_id == 12 and e.value.char == "%"
    assert "row 2 (id 12)" in str(e.value) and "'%'" in str(e.value) and "skip" in str(e.value)
    meta = prepare(p, tmp_path / "out2", "train", progress=False, on_unknown="skip")
    assert meta["skipped_char_molecules"] == 1
    tokens = np.fromfile(tmp_path / "out2" / "tokens.u8", np.uint8).reshape(2, 142)
    cc, cl = encode(["CC"])[0, :2], encode(["Cl"])[0, :2]
    assert (
        tokens[1, :5].tolist()
        == [
            *cc,
            0,
            *cl,
        ][:5]
    )  # '%' dropped to PAD in place


def test_non_adjacent_molecule_is_refused_with_row_ids(tmp_path):
    p = _write(tmp_path, [(1, "CCO", "BRD4", 0), (2, "CCN", "BRD4", 0), (3, "CCO", "HSA", 0)])
    with pytest.raises(PrepareError, match=r"row 2 \(id 3\): molecule 'CCO' \(first at row id 1\) appears again"):
        prepare(p, tmp_path / "o1", "train", progress=False)
    # across a batch boundary: the held-back last molecule of a batch reappears after another one
    p = _write(
        tmp_path,
        [(1, "CCC", "BRD4", 0), (2, "CCO", "BRD4", 0), (3, "CCN", "BRD4", 0), (4, "CCO", "HSA", 0)],
        "b.parquet",
    )
    with pytest.raises(PrepareError, match=r"row 3 \(id 4\): .*first at row id 2") as e:
        prepare(p, tmp_path / "o2", "train", progress=False, batch_rows=2)
    assert e.value.row_id == 4


def test_duplicate_protein_row_and_bad_values_are_refused(tmp_path):
    p = _write(tmp_path, [(1, "CCO", "BRD4", 0), (2, "CCO", "BRD4", 1)])
    with pytest.raises(PrepareError, match=r"row 1 \(id 2\): a second row for molecule 'CCO' and protein 'BRD4'"):
        prepare(p, tmp_path / "o", "train", progress=False)
    with pytest.raises(PrepareError, match=r"row 1 \(id 2\): a second row .* 'BRD4'"):  # split by a batch boundary
        prepare(p, tmp_path / "o1", "train", progress=False, batch_rows=1)
    p = _write(tmp_path, [(1, "CCO", "BRD4", 0), (2, "CCO", "XYZ", 1)], "p.parquet")
    with pytest.raises(PrepareError, match=r"row 1 \(id 2\): protein_name 'XYZ' is not one of"):
        prepare(p, tmp_path / "o2", "train", progress=False)
    p = _write(tmp_path, [(1, "CCO", "BRD4", 2)], "b.parquet")
    with pytest.raises(PrepareError, match=r"row 0 \(id 1\): binds=2, expected 0 or 1"):
        prepare(p, tmp_path / "o3", "train", progress=False)
    pq.write_table(pq.read_table(p).drop(["binds"]), tmp_path / "nb.parquet")
    with pytest.raises(DataError, match=r"missing column\(s\) \['binds'\]"):
        prepare(tmp_path / "nb.parquet", tmp_path / "o4", "train", progress=False)
    with pytest.raises(DataError, match="not found"):
        prepare(tmp_path / "nope.parquet", tmp_path / "o5", "train", progress=False)


def test_test_split_maps_row_ids_and_extends_the_train_vocabulary(raw, tmp_path):
    meta = prepare_dir(raw, tmp_path / "prep", batch_rows=100, progress=False)
    assert meta["splits"]["train"]["n"] == 400 and meta["splits"]["test"]["n"] == 150
    test = arrays(tmp_path / "prep" / "test")
    train_vocab = json.loads((tmp_path / "prep" / "train" / "bb_vocab.json").read_text())
    assert test["vocab"][: len(train_vocab)].tolist() == train_vocab  # same ids for shared building blocks
    df = pd.read_parquet(raw / "test.parquet")
    ids = test["ids.i64"]
    assert sorted(ids[ids >= 0].tolist()) == sorted(df["id"].tolist())  # every test row exactly once
    mols = df["molecule_smiles"].drop_duplicates().tolist()
    m = df["molecule_smiles"].map({s: i for i, s in enumerate(mols)}).to_numpy()
    p = df["protein_name"].map({"BRD4": 0, "HSA": 1, "sEH": 2}).to_numpy()
    assert (ids[m, p] == df["id"].to_numpy()).all()
    assert (ids < 0).any()  # some test molecules lack a protein, as in the competition
    assert (test["labels.u8"] == ABSENT).all()
    assert (
        test["vocab"][test["bb.i32"][:, 1]]
        == df.groupby("molecule_smiles", sort=False).first().loc[mols, "buildingblock2_smiles"].to_numpy()
    ).all()
