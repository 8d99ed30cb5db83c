"""Reading the MoA files: g-/c- columns by prefix, categorical encoding, control rows, bad input refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from molremote.errors import DataError
from molremote.tasks.moa.data import read_features, read_moa
from molremote.tasks.moa.task import MoaTask

from .conftest import DEMO, moa_exp


def test_reads_the_demo_columns_by_prefix_and_encodes_categories():
    raw = pd.read_csv(DEMO / "train_features.csv")
    f = read_features(DEMO / "train_features.csv")
    assert f.gene_cols == [c for c in raw.columns if c.startswith("g-")] and len(f.gene_cols) == 150
    assert f.cell_cols == [c for c in raw.columns if c.startswith("c-")] and len(f.cell_cols) == 20
    np.testing.assert_array_equal(f.genes, raw[f.gene_cols].to_numpy(np.float32))
    np.testing.assert_array_equal(f.cat[:, 0], (raw["cp_type"] == "ctl_vehicle").to_numpy())
    np.testing.assert_array_equal(f.cat[:, 1], raw["cp_time"].map({24: 0, 48: 1, 72: 2}).to_numpy())
    np.testing.assert_array_equal(f.cat[:, 2], (raw["cp_dose"] == "D2").to_numpy())
    assert f.control.sum() == (raw["cp_type"] == "ctl_vehicle").sum() > 0


def test_control_rows_are_dropped_from_training_and_zero_in_the_test_predictions(tmp_path):
    task = MoaTask(moa_exp())
    task.load()
    raw = pd.read_csv(DEMO / "train_features.csv")
    treated = raw["sig_id"][raw["cp_type"] == "trt_cp"].to_numpy()
    np.testing.assert_array_equal(task.train.sig_id, treated)
    assert task.n_train() == len(treated) < len(raw)
    y = pd.read_csv(DEMO / "train_targets_scored.csv").set_index("sig_id").loc[treated]
    np.testing.assert_array_equal(task.y, y.to_numpy(np.float32))
    # test: every row is predicted, controls as 0
    p = np.full((task.n_test(), len(task.target_cols)), 0.3)
    out = task.write_predictions(tmp_path, "test", np.arange(task.n_test()), {"p": p})
    t = pd.read_parquet(out).set_index("sig_id")
    test = pd.read_csv(DEMO / "test_features.csv").set_index("sig_id")
    ctl = test.index[test["cp_type"] == "ctl_vehicle"]
    assert len(ctl) > 0 and (t.loc[ctl].to_numpy() == 0).all()
    assert (t.drop(index=ctl).to_numpy() == 0.3).all()


def test_a_bad_category_is_refused_with_file_row_and_value(moa_copy):
    df = pd.read_csv(moa_copy / "train_features.csv")
    df.loc[3, "cp_dose"] = "D9"
    df.to_csv(moa_copy / "train_features.csv", index=False)
    with pytest.raises(
        DataError,
        match=r"train_features.csv: row 5 \(sig_id id_\w+\): cp_dose = 'D9', expected one "
        r"of \['D1', 'D2'\]",
    ):
        read_moa(moa_copy)


def test_a_non_numeric_feature_and_a_non_binary_target_are_refused(moa_copy):
    df = pd.read_csv(moa_copy / "test_features.csv")
    df["g-7"] = df["g-7"].astype(object)
    df.loc[0, "g-7"] = "oops"
    df.to_csv(moa_copy / "test_features.csv", index=False)
    with pytest.raises(DataError, match=r"test_features.csv: row 2 .*g-7 = 'oops' is not a finite number"):
        read_moa(moa_copy)
    read_features(moa_copy / "train_features.csv")  # the other file is fine
    y = pd.read_csv(moa_copy / "train_targets_scored.csv")
    y.iloc[1, 2] = 2
    y.to_csv(moa_copy / "train_targets_scored.csv", index=False)
    with pytest.raises(DataError, match=r"train_targets_scored.csv: sig_id .*: celltype_\w+ = 2, expected 0 or 1"):
        from molremote.tasks.moa.data import read_targets

        read_targets(moa_copy / "train_targets_scored.csv", y["sig_id"].to_numpy())


def test_missing_files_name_the_file_and_the_download_command(tmp_path):
    task = MoaTask(moa_exp(tmp_path / "nothing"))
    with pytest.raises(DataError, match=r"train_features.csv not found.*kaggle competitions download -c lish-moa"):
        task.load()
