"""Reading the competition's files (torch-free). `read_moa(dir)` -> `MoaData`.

Features: `g-*` (gene expression) and `c-*` (cell viability) columns found by prefix, in file order; the
categorical columns are encoded as numbers: cp_type trt_cp=0 / ctl_vehicle=1, cp_time 24/48/72 -> 0/1/2,
cp_dose D1/D2 -> 0/1. Control rows (`ctl_vehicle`) have no mechanism of action: the task drops them from
training and predicts 0 for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError

FILES = (
    "train_features.csv",
    "train_targets_scored.csv",
    "train_targets_nonscored.csv",
    "train_drug.csv",
    "test_features.csv",
    "sample_submission.csv",
)
CATEGORIES = {"cp_type": ("trt_cp", "ctl_vehicle"), "cp_time": (24, 48, 72), "cp_dose": ("D1", "D2")}
CONTROL = "ctl_vehicle"


@dataclass
class Features:
    sig_id: np.ndarray  # str
    cat: np.ndarray  # (n, 3) int8: cp_type, cp_time, cp_dose codes
    genes: np.ndarray  # (n, n_g) float32
    cells: np.ndarray  # (n, n_c) float32
    gene_cols: list[str]
    cell_cols: list[str]

    @property
    def control(self) -> np.ndarray:
        return self.cat[:, 0] == CATEGORIES["cp_type"].index(CONTROL)

    def take(self, rows: np.ndarray) -> Features:
        return Features(
            self.sig_id[rows], self.cat[rows], self.genes[rows], self.cells[rows], self.gene_cols, self.cell_cols
        )


@dataclass
class MoaData:
    train: Features
    test: Features
    scored: np.ndarray  # (n_train, k) float32 0/1, rows as train
    scored_cols: list[str]
    nonscored: np.ndarray  # (n_train, k2) float32
    nonscored_cols: list[str]
    drug: np.ndarray  # (n_train,) str drug_id per training row
    submission_cols: list[str]  # sample_submission's value columns, in order


def _plain(v: object) -> object:
    """A numpy scalar as the Python value (messages show 2, not np.int64(2))."""
    return v.item() if isinstance(v, np.generic) else v


def _csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot be read as CSV: {e}") from None


def read_features(path: Path) -> Features:
    df = _csv(path)
    for c in ("sig_id", *CATEGORIES):
        if c not in df.columns:
            raise DataError(f"{path}: column {c!r} missing (header starts {list(df.columns[:6])})")
    cat = np.zeros((len(df), len(CATEGORIES)), dtype=np.int8)
    for j, (c, values) in enumerate(CATEGORIES.items()):
        col = df[c]
        if c == "cp_time":
            col = pd.to_numeric(col, errors="coerce")
        codes = col.map({v: i for i, v in enumerate(values)})
        bad = np.flatnonzero(codes.isna().to_numpy())
        if len(bad):
            r = int(bad[0])
            raise DataError(
                f"{path}: row {r + 2} (sig_id {df['sig_id'].iloc[r]}): {c} = {_plain(df[c].iloc[r])!r}, "
                f"expected one of {list(values)}"
            )
        cat[:, j] = codes.to_numpy(dtype=np.int8)
    gene_cols = [c for c in df.columns if c.startswith("g-")]
    cell_cols = [c for c in df.columns if c.startswith("c-")]
    if not gene_cols or not cell_cols:
        raise DataError(f"{path}: needs g- and c- columns (found {len(gene_cols)} g-, {len(cell_cols)} c-)")
    num = df[gene_cols + cell_cols]
    x = num.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float32)
    bad_r, bad_c = np.nonzero(~np.isfinite(x))
    if len(bad_r):
        row, col = int(bad_r[0]), int(bad_c[0])
        raise DataError(
            f"{path}: row {row + 2} (sig_id {df['sig_id'].iloc[row]}): {num.columns[col]} = "
            f"{_plain(num.iloc[row, col])!r} is not a finite number"
        )
    g = len(gene_cols)
    return Features(df["sig_id"].astype(str).to_numpy(), cat, x[:, :g], x[:, g:], gene_cols, cell_cols)


def read_targets(path: Path, sig_id: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Targets aligned to `sig_id` (the features' order); 0/1 only."""
    df = _csv(path)
    if "sig_id" not in df.columns:
        raise DataError(f"{path}: column 'sig_id' missing")
    df = df.set_index(df["sig_id"].astype(str)).drop(columns="sig_id")
    missing = np.setdiff1d(sig_id, df.index.to_numpy())
    if len(missing):
        raise DataError(f"{path}: no row for {len(missing)} training sig_id(s), e.g. {missing[:3].tolist()}")
    y = df.loc[sig_id].to_numpy()
    bad_r, bad_c = np.nonzero(~np.isin(y, (0, 1)))
    if len(bad_r):
        r, c = int(bad_r[0]), int(bad_c[0])
        raise DataError(f"{path}: sig_id {sig_id[r]}: {df.columns[c]} = {_plain(y[r, c])!r}, expected 0 or 1")
    return y.astype(np.float32), [str(c) for c in df.columns]


def read_moa(d: Path) -> MoaData:
    d = Path(d)
    train = read_features(d / "train_features.csv")
    test = read_features(d / "test_features.csv")
    if train.gene_cols != test.gene_cols or train.cell_cols != test.cell_cols:
        raise DataError(f"{d / 'test_features.csv'}: g-/c- columns differ from train_features.csv")
    scored, scored_cols = read_targets(d / "train_targets_scored.csv", train.sig_id)
    nonscored, nonscored_cols = read_targets(d / "train_targets_nonscored.csv", train.sig_id)
    drugs = _csv(d / "train_drug.csv")
    if not {"sig_id", "drug_id"} <= set(drugs.columns):
        raise DataError(f"{d / 'train_drug.csv'}: needs columns sig_id, drug_id (has {list(drugs.columns)})")
    dmap = drugs.set_index(drugs["sig_id"].astype(str))["drug_id"].astype(str)
    missing = np.setdiff1d(train.sig_id, dmap.index.to_numpy())
    if len(missing):
        raise DataError(
            f"{d / 'train_drug.csv'}: no drug_id for {len(missing)} training sig_id(s), e.g. {missing[:3].tolist()}"
        )
    header = list(_csv(d / "sample_submission.csv").columns)
    if not header or header[0] != "sig_id" or header[1:] != scored_cols:
        raise DataError(
            f"{d / 'sample_submission.csv'}: header must be sig_id + the {len(scored_cols)} columns of "
            f"train_targets_scored.csv in order (got {header[:4]}...)"
        )
    return MoaData(
        train, test, scored, scored_cols, nonscored, nonscored_cols, dmap.loc[train.sig_id].to_numpy(), header[1:]
    )
