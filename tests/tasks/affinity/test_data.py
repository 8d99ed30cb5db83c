"""Pair files: columns, units, bad SMILES / residues counted and dropped or refused; fold schemes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from molremote.errors import DataError, ExperimentError
from molremote.tasks.affinity import data as ad
from molremote.tasks.affinity import folds as af
from molremote.tasks.base import DEMO_ROOT

GOOD = ("MKTAYIAKQR", "CCO")


def write(tmp_path, rows, name="pairs.csv", affinity="affinity_uM"):
    df = pd.DataFrame(rows, columns=["seq", "smiles_can", affinity])
    path = tmp_path / name
    df.to_parquet(path) if name.endswith(".parquet") else df.to_csv(path, index=False)
    return path


def read(path, invalid="drop", unit="uM", col="affinity_uM"):
    return ad.read_pairs(path, seq_col="seq", smiles_col="smiles_can", affinity_col=col, unit=unit, invalid=invalid)


@pytest.mark.parametrize("name", ["pairs.csv", "pairs.parquet"])
def test_units_and_ids(tmp_path, name):
    rows = [("MKTAYIAKQR", "CCO", 1.0), ("MKTAYIAKQR", "c1ccccc1", 0.001), ("ACDEFG", "CCO", 10.0)]
    p = read(write(tmp_path, rows, name))
    assert np.allclose(p.y, [6.0, 9.0, 5.0])  # pK = 6 - log10(uM)
    assert p.proteins == ["ACDEFG", "MKTAYIAKQR"] and p.ligands == ["CCO", "c1ccccc1"]
    assert p.prot.tolist() == [1, 1, 0] and p.lig.tolist() == [0, 1, 0]
    assert np.allclose(ad.to_pk(np.array([100.0]), "nM"), [7.0])


def test_bad_rows_are_counted_and_dropped_or_refused(tmp_path):
    rows = [
        (*GOOD, 1.0),
        ("MKTAYIAKQR", "C1CC(", 1.0),  # unparsable SMILES
        ("MKTAYBJ", "CCO", 1.0),  # B and J are not standard residues
        ("MKTAYIAKQR", "CCN", 2.0),
    ]
    path = write(tmp_path, rows)
    p = read(path)
    assert len(p) == 2 and p.row.tolist() == [0, 3]
    assert p.dropped == {"invalid_smiles": 1, "nonstandard_residues": 1, "missing_affinity": 0}
    with pytest.raises(DataError) as e:
        read(path, invalid="refuse")
    assert str(path) in str(e.value) and "row 1" in str(e.value) and "C1CC(" in str(e.value)


def test_missing_column_and_bad_unit_value_name_the_file(tmp_path):
    path = write(tmp_path, [(*GOOD, 1.0)])
    with pytest.raises(DataError, match=r"pairs.csv: column\(s\) \['neg_log10_affinity_M'\] missing"):
        read(path, col="neg_log10_affinity_M", unit="pK")
    neg = write(tmp_path, [(*GOOD, -1.0)], name="neg.csv")
    with pytest.raises(DataError, match="neg.csv: affinity_uM must be > 0 in uM"):
        read(neg)


def test_tokens_are_left_aligned_and_truncated():
    t = ad.protein_tokens(["ACX", "ACDEFGHIK"], 4)
    assert t.tolist() == [[1, 2, 21, 0], [1, 2, 3, 4]]
    s = ad.smiles_tokens(["C=O"], 5)
    assert s.tolist() == [[ord("C") - 31, ord("=") - 31, ord("O") - 31, 0, 0]]


def demo_pairs():
    return read(DEMO_ROOT / "affinity" / "train.parquet", unit="score", col="kiba_score")


def test_demo_data_is_the_kiba_sample():
    train = pd.read_parquet(DEMO_ROOT / "affinity" / "train.parquet")
    test = pd.read_parquet(DEMO_ROOT / "affinity" / "test.parquet")
    assert len(train) == 4000 and len(test) == 1000
    assert train.split.value_counts().to_dict() == {"train": 3000, "val": 1000}
    pool = pd.concat([train, test])
    assert pool.prot_id.nunique() == 189 and pool.ligand_id.nunique() == 458
    seen = train[train.split == "train"]
    for other in (train[train.split == "val"], test):  # unseen proteins and ligands, as the sample promises
        assert not set(other.prot_id) & set(seen.prot_id) and not set(other.ligand_id) & set(seen.ligand_id)


@pytest.mark.parametrize("scheme,key", [("protein", "prot"), ("ligand", "lig"), ("scaffold", "scaffold")])
def test_grouped_folds_never_share_a_group(scheme, key):
    p = demo_pairs()
    sc = np.array(ad.scaffolds(p.ligands), dtype=object)[p.lig]
    f = af.assign(scheme, 5, 0, prot=p.prot, lig=p.lig, scaffold=sc)
    groups = {"prot": p.prot, "lig": p.lig, "scaffold": sc}[key]
    for g in np.unique(groups):
        assert len(np.unique(f[groups == g])) == 1
    sizes = np.bincount(f, minlength=5)
    assert sizes.min() > 0.5 * sizes.max()  # balanced enough to be folds


def test_random_and_official_folds():
    p = demo_pairs()
    f = af.assign("random", 5, 0, prot=p.prot, lig=p.lig)
    assert np.bincount(f).tolist() == [800] * 5
    split = pd.read_parquet(DEMO_ROOT / "affinity" / "train.parquet").split.to_numpy()
    o = af.assign("official", 5, 0, prot=p.prot, lig=p.lig, split=split)
    assert np.array_equal(o == 0, split == "val")
    with pytest.raises(ExperimentError, match="needs a 'split' column"):
        af.assign("official", 5, 0, prot=p.prot, lig=p.lig)
    with pytest.raises(ExperimentError, match="unknown fold scheme 'cold'"):
        af.assign("cold", 5, 0, prot=p.prot, lig=p.lig)


def test_scaffolds_are_murcko():
    assert ad.scaffolds(["Cc1ccccc1", "CCO", "c1ccc2ccccc2c1CC"]) == ["c1ccccc1", "", "c1ccc2ccccc2c1"]
