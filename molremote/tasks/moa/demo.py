"""Builder of the shipped MoA demo data (`molremote/demo_data/moa/`), from real single-cell expression data.

Source (builder needs `pip install h5py`): `10x_pbmc68k_reduced.h5ad`, shipped inside the `scanpy` wheel
(scanpy/datasets/; 700 peripheral blood cells x 765 scaled genes from 10x Genomics' PBMC 68k, with the cell
labels `bulk_labels` (10 cell types), `louvain` (11 clusters) and `phase` (G1/S/G2M)). Read with h5py; scanpy
itself is not needed:

    pip download scanpy --no-deps -d /tmp/scanpy && unzip -o /tmp/scanpy/scanpy-*.whl \\
        'scanpy/datasets/10x_pbmc68k_reduced.h5ad' -d /tmp/scanpy
    python -m molremote.tasks.moa.demo /tmp/scanpy/scanpy/datasets/10x_pbmc68k_reduced.h5ad

How the cells become an MoA-shaped data set (seeded, deterministic):
- rows: one per cell, sig_id `id_<9 hex>`; 70 random cells are controls (cp_type ctl_vehicle, all targets 0);
- pseudo-drugs: the other cells, grouped by cell type (`bulk_labels`), are cut into drugs of 6 rows, each
  row one of 3 times (24/48/72) x 2 doses (D1/D2), like MoA's replicate design; two drugs get 24 rows (4
  replicates), so the drug-aware folds see both small drugs (<= 18 rows, kept whole) and large ones;
- g- columns: the 150 most variable genes (`var/dispersions_norm`) of `X`, rounded to 3 decimals;
  c- columns: the first 20 principal components (`obsm/X_pca`), rounded to 3 decimals;
- scored targets (14): one-hot cell type (10 `bulk_labels`), cell-cycle phase S and G2M (2 real labels), and
  2 documented synthetic rare targets set per drug: `rare_high_<gene>` = the drug's mean of the most variable
  gene is in the top 6% of drugs, `rare_low_<gene>` = the drug's mean of the second most variable gene is in
  the bottom 6% (a rare, drug-level label learnable from the features, as many MoA targets are);
- non-scored targets (11): one-hot `louvain` cluster;
- test: 20% of the drugs and 20% of the controls, written as test_features.csv + sample_submission.csv.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..base import DEMO_ROOT

OUT = DEMO_ROOT / "moa"
N_CONTROLS, N_GENES, N_CELLS = 70, 150, 20
DRUG_ROWS, BIG_DRUG_ROWS, RARE_FRACTION, TEST_FRACTION = 6, 24, 0.06, 0.2
TIMES, DOSES = (24, 48, 72), ("D1", "D2")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _categorical(f, name: str) -> tuple[np.ndarray, list[str]]:
    codes = f["obs"][name][:]
    cats = [c.decode() for c in f["uns"][f"{name}_categories"][:]]
    return codes.astype(int), cats


def build(h5ad: Path, out: Path = OUT, seed: int = 12) -> Path:
    import h5py

    rng = np.random.default_rng(seed)
    with h5py.File(h5ad, "r") as f:
        x = f["X"][:]
        disp = f["var"]["dispersions_norm"][:]
        genes = [g.decode() for g in f["var"]["index"][:]]
        pcs = f["obsm"]["X_pca"][:, :N_CELLS]
        bulk, bulk_cats = _categorical(f, "bulk_labels")
        louvain, louvain_cats = _categorical(f, "louvain")
        phase, phase_cats = _categorical(f, "phase")
    n = len(x)
    top = np.argsort(-np.nan_to_num(disp, nan=-np.inf), kind="stable")[:N_GENES]
    g, c = np.round(x[:, top], 3), np.round(pcs, 3)
    sig = np.array([f"id_{v:09x}" for v in rng.choice(16**9, size=n, replace=False)])
    control = np.zeros(n, bool)
    control[rng.choice(n, N_CONTROLS, replace=False)] = True

    # pseudo-drugs: treated cells of one type cut into groups of 6 (two groups of 24)
    drug = np.empty(n, dtype=object)
    time = np.zeros(n, int)
    dose = np.empty(n, dtype=object)
    k = 0
    big_left = 2
    for t in range(len(bulk_cats)):
        cells = rng.permutation(np.flatnonzero((bulk == t) & ~control))
        s = 0
        while s < len(cells):
            size = BIG_DRUG_ROWS if big_left and len(cells) - s >= 3 * BIG_DRUG_ROWS else DRUG_ROWS
            big_left -= size == BIG_DRUG_ROWS
            grp = cells[s : s + size]
            drug[grp] = f"{rng.integers(16**7):07x}"[:7] + f"{k:02d}"[-2:]
            for i, r in enumerate(grp):
                time[r], dose[r] = TIMES[i % 3], DOSES[(i // 3) % 2]
            k += 1
            s += size
    drug[control] = "cacb2b860"  # MoA's control "drug" id
    time[control] = rng.choice(TIMES, control.sum())
    dose[control] = rng.choice(DOSES, control.sum())

    scored = pd.DataFrame({f"celltype_{_slug(b)}": (bulk == i).astype(int) for i, b in enumerate(bulk_cats)})
    for p in ("S", "G2M"):
        scored[f"phase_{p.lower()}"] = (phase == phase_cats.index(p)).astype(int)
    drugs = np.unique(drug[~control])
    for name, gene_j, high in (("rare_high", 0, True), ("rare_low", 1, False)):
        means = pd.Series(g[~control, gene_j]).groupby(drug[~control]).mean()
        rank = (-means if high else means).rank(method="first")  # ties broken by drug order: exactly k drugs
        pos = set(means.index[rank <= max(1, round(RARE_FRACTION * len(means)))])
        scored[f"{name}_{_slug(genes[top[gene_j]])}"] = [int(d in pos) for d in drug]
    nonscored = pd.DataFrame({f"louvain_{i}": (louvain == i).astype(int) for i in range(len(louvain_cats))})
    scored[control] = 0
    nonscored[control] = 0

    test_drugs = set(rng.choice(drugs, round(TEST_FRACTION * len(drugs)), replace=False))
    ctl_idx = np.flatnonzero(control)
    test = np.isin(drug, list(test_drugs))
    test[rng.choice(ctl_idx, round(TEST_FRACTION * len(ctl_idx)), replace=False)] = True

    feats = pd.DataFrame(
        {"sig_id": sig, "cp_type": np.where(control, "ctl_vehicle", "trt_cp"), "cp_time": time, "cp_dose": dose}
    )
    feats = pd.concat(
        [
            feats,
            pd.DataFrame(g, columns=[f"g-{i}" for i in range(N_GENES)]),
            pd.DataFrame(c, columns=[f"c-{i}" for i in range(N_CELLS)]),
        ],
        axis=1,
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    from ...fsutil import write_text

    def save(df: pd.DataFrame, name: str) -> None:
        write_text(out / name, df.to_csv(index=False, float_format="%.3f" if name.endswith("features.csv") else None))

    tr = ~test
    save(feats[tr], "train_features.csv")
    save(feats[test], "test_features.csv")
    save(pd.concat([feats[["sig_id"]], scored], axis=1)[tr], "train_targets_scored.csv")
    save(pd.concat([feats[["sig_id"]], nonscored], axis=1)[tr], "train_targets_nonscored.csv")
    save(pd.DataFrame({"sig_id": sig[tr], "drug_id": drug[tr]}), "train_drug.csv")
    sub = pd.DataFrame(0.5, index=range(int(test.sum())), columns=list(scored.columns))
    save(pd.concat([pd.DataFrame({"sig_id": sig[test]}), sub], axis=1), "sample_submission.csv")
    return out


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(build(Path(sys.argv[1])))
