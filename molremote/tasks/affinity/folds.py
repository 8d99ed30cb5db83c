"""Fold schemes over the training pairs (`folds.scheme`), each a fold id per pair:

- "random": pairs spread at random (the same protein and ligand on both sides: the easy setting);
- "protein": unseen proteins, every pair of a protein in one fold (grouped);
- "ligand": unseen ligands, grouped by ligand;
- "scaffold": unseen chemotypes, grouped by the ligand's Bemis-Murcko scaffold (RDKit);
- "official": fold 0 is the file's own validation rows (`split == "val"`: the KIBA demo's unseen proteins
  and ligands), the other rows at random over folds 1..n_folds-1.

Grouped folds: groups in a seeded random order, largest first, each given to the fold holding the fewest
pairs so far (folds of near-equal size even when one protein has thousands of pairs).
"""

from __future__ import annotations

import numpy as np

from ...errors import ExperimentError

SCHEMES = ("random", "protein", "ligand", "scaffold", "official")


def grouped(groups: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    uniq, inv, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    if len(uniq) < n_folds:
        raise ExperimentError(f"{len(uniq)} groups cannot fill {n_folds} folds", field="folds.n_folds")
    perm = np.random.default_rng(seed).permutation(len(uniq))
    order = perm[np.argsort(-counts[perm], kind="stable")]
    size = np.zeros(n_folds, dtype=np.int64)
    fold_of = np.empty(len(uniq), dtype=np.int64)
    for g in order.tolist():
        f = int(np.argmin(size))
        fold_of[g] = f
        size[f] += counts[g]
    return fold_of[inv.reshape(-1)]


def assign(scheme: str, n_folds: int, seed: int, *, prot, lig, scaffold=None, split=None) -> np.ndarray:
    n = len(prot)
    if n_folds < 2:
        raise ExperimentError(f"affinity folds need n_folds >= 2 (got {n_folds})", field="folds.n_folds")
    rng = np.random.default_rng(seed)
    if scheme == "random":
        return (rng.permutation(n) % n_folds).astype(np.int64)
    if scheme == "protein":
        return grouped(prot, n_folds, seed)
    if scheme == "ligand":
        return grouped(lig, n_folds, seed)
    if scheme == "scaffold":
        if scaffold is None:  # pragma: no cover - the task always passes them for this scheme
            raise ValueError("scaffold folds need the scaffolds")
        return grouped(scaffold, n_folds, seed)
    if scheme == "official":
        if split is None:
            raise ExperimentError(
                "scheme 'official' needs a 'split' column (train/val) in the training file", field="folds.scheme"
            )
        val = np.asarray(split).astype(str) == "val"
        if not val.any():
            raise ExperimentError("scheme 'official': no row has split == 'val'", field="folds.scheme")
        out = np.zeros(n, dtype=np.int64)
        tr = np.flatnonzero(~val)
        out[tr] = 1 + rng.permutation(len(tr)) % (n_folds - 1)
        return out
    raise ExperimentError(f"unknown fold scheme {scheme!r} for affinity ({' | '.join(SCHEMES)})", field="folds.scheme")
