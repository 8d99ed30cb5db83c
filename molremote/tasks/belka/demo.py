"""Build the BELKA demo data: `molremote/demo_data/belka/{train,test,test_solution}.parquet`.

Deterministic (seed 2024); re-running it rewrites byte-identical files for a given RDKit version.

Molecules. Real BELKA molecules are DNA-encoded-library products: building block 1 is an Fmoc-protected
amino acid whose acid becomes the amide to the DNA linker (`C(=O)N[Dy]`) and whose amine is put on a
1,3,5-triazine core; building blocks 2 and 3 are amines on the two other triazine carbons. The demo makes
molecules the same way, with RDKit reactions, from REAL molecules shipped with RDKit
(`rdkit/Data/NCI/first_5K.smi`, the first 5,000 NCI open compounds):
  - building block 1: NCI compounds (largest fragment, neutralised) with exactly one carboxylic acid and
    exactly one reactive amine (primary/secondary aliphatic amine or aniline), <= 16 heavy atoms; stored
    Fmoc-protected like BELKA's `buildingblock1_smiles`;
  - building blocks 2/3: NCI compounds with exactly one primary amine (aliphatic or aniline), no acid,
    <= 16 heavy atoms; one pool for both positions (as in BELKA, where the two pools overlap).
Products whose canonical SMILES has a character outside the 36-symbol BELKA vocabulary (e.g. `P`, `\\`)
or more than 142 characters are dropped. ~20% of each building-block pool is reserved for the test set.

Files (the competition's exact long format):
  - train.parquet: `id, buildingblock1_smiles, buildingblock2_smiles, buildingblock3_smiles,
    molecule_smiles, protein_name, binds`; 10,000 molecules x 3 proteins (BRD4, HSA, sEH), rows
    molecule-major, ids 0..29,999; built only from the non-reserved building blocks.
  - test.parquet: same columns without `binds`; 2,000 molecules, ids continue after train. Half are
    "share" molecules (all three building blocks from the training pools, new combinations), half
    "nonshare" (at least one building block from the reserved pools, i.e. never seen in train). As in
    the competition not every test molecule is paired with all 3 proteins: each keeps all 3 with
    probability 0.6, else a random non-empty proper subset.
  - test_solution.parquet: `id, protein_name, split_group, binds` for the test rows (the hidden key a
    Kaggle-like scorer needs; the competition does not publish it).

Labels (SYNTHETIC: the real binding data cannot be shipped). Each building block gets substructure
features computed by RDKit on the free building block (acid of building block 1 excluded):
  het  aromatic N/O/S atoms            ome  aryl methyl ethers          carb  non-acid C=O groups
  hal  aryl Cl/Br/I                    fl   F atoms                     so2   sulfonyl groups
  nitro nitro groups                   oh   hydroxyl groups             ph    benzene rings
  logp Crippen logP
A molecule's features are the sums over its three building blocks. Per protein a score is
    BRD4 = 1.2*het + 0.8*ome + 0.6*carb + 1.0*[het>0 and carb>0] - 0.3*nitro
    HSA  = 0.6*logp + 0.8*hal + 0.5*ph - 0.5*oh
    sEH  = 1.0*carb + 1.2*fl + 0.8*so2 + 0.8*[hal>0 and carb>0]
standardised over all generated molecules (train and test), plus Gaussian noise N(0, 0.6^2); a molecule
binds a protein when its noisy score is above the (1 - rate) quantile of the noisy scores, with rates
BRD4 2.5%, HSA 3%, sEH 4% (BELKA's real rates are 0.4-0.7%; higher here so a few thousand molecules carry
enough positives to learn from). The rule depends only on substructures, so a model can generalise to
building blocks it never saw, which is what the nonshare test molecules measure.

Usage: .venv/bin/python -m molremote.tasks.belka.demo [--out molremote/demo_data/belka]
(`scripts/make_demo_data.py` is a shim for this module.)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rdkit import Chem, RDConfig, RDLogger
from rdkit.Chem import AllChem, Crippen
from rdkit.Chem.MolStandardize import rdMolStandardize

from ...fsutil import atomic_path
from ..base import DEMO_ROOT

RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]  # rdkit's stubs omit its Boost.Python functions

SEED = 2024
N_TRAIN, N_TEST = 10_000, 2_000
PROTEINS = ["BRD4", "HSA", "sEH"]
RATES = {"BRD4": 0.025, "HSA": 0.03, "sEH": 0.04}
NOISE = 0.6
MAX_HEAVY = 16
MAX_LEN = 142
RESERVED = 0.2
VOCAB = set("ly@3HSFCrs/co+I5(2)9i#68 4=1O[DB]N7n-".replace(" ", ""))

FMOC = "C(=O)OCC1c2ccccc2-c2ccccc21"
ACID = Chem.MolFromSmarts("[CX3](=O)[OX2H1]")
REACTIVE_AMINE = Chem.MolFromSmarts("[NX3;H2,H1;!$(N[C,S]=[O,S,N]);!$(N-[N,O]);!$(Nc=[O,S,N]);!$(N#*);!$(N=*)]")
PRIMARY_AMINE = Chem.MolFromSmarts("[NX3;H2;!$(N[C,S]=[O,S,N]);!$(N-[N,O]);!$(N=*)]")
DY_AMIDE = AllChem.ReactionFromSmarts("[C:1](=[O:2])[OX2H1]>>[C:1](=[O:2])N[Dy]")  # type: ignore[attr-defined]
SNAR = AllChem.ReactionFromSmarts("[Cl][c:1].[NX3;!H0;!$(NC=O);!$(N[Dy]):2]>>[c:1]-[N:2]")  # type: ignore[attr-defined]
PROTECT = AllChem.ReactionFromSmarts(f"[NX3;!H0;!$(NC=O);!$(N[Dy]):1]>>[N:1]{FMOC}")  # type: ignore[attr-defined]
CORE = Chem.MolFromSmiles("Clc1nc(Cl)nc(Cl)n1")

FEATURES = {
    "het": "[n,o,s;a]",
    "ome": "c[OX2][CH3]",
    "carb": "[CX3;!$(C(=O)[OX2H1])]=O",
    "hal": "c[Cl,Br,I]",
    "fl": "[F]",
    "so2": "[SX4](=O)(=O)",
    "nitro": "[N+](=O)[O-]",
    "oh": "[OX2H;!$(OC=O)]",
    "ph": "c1ccccc1",
}
FEATURE_PATTERNS = {k: Chem.MolFromSmarts(v) for k, v in FEATURES.items()}


def _clean(smiles: str) -> Chem.Mol | None:
    m = Chem.MolFromSmiles(smiles)
    if m is None:
        return None
    m = rdMolStandardize.LargestFragmentChooser().choose(m)
    m = rdMolStandardize.Uncharger().uncharge(m)
    Chem.SanitizeMol(m)
    if m.GetNumHeavyAtoms() > MAX_HEAVY or any(a.GetIsotope() for a in m.GetAtoms()):
        return None
    if any(a.GetSymbol() not in {"C", "N", "O", "S", "F", "Cl", "Br", "I"} for a in m.GetAtoms()):
        return None
    return m


def _ok(smiles: str) -> bool:
    return len(smiles) <= MAX_LEN and set(smiles) <= VOCAB


def building_blocks() -> tuple[list[Chem.Mol], list[Chem.Mol]]:
    path = os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")
    bb1, amines, seen = [], [], set()
    for line in open(path):
        parts = line.split()
        if not parts:
            continue
        m = _clean(parts[0])
        if m is None:
            continue
        can = Chem.MolToSmiles(m)
        if can in seen:
            continue
        seen.add(can)
        n_acid = len(m.GetSubstructMatches(ACID))
        if n_acid == 1 and len(m.GetSubstructMatches(REACTIVE_AMINE)) == 1:
            bb1.append(m)
        elif (
            n_acid == 0
            and len(m.GetSubstructMatches(PRIMARY_AMINE)) == 1
            and len(m.GetSubstructMatches(REACTIVE_AMINE)) == 1
        ):
            amines.append(m)
    return bb1, amines


def _one(rxn, *mols) -> Chem.Mol:
    prods = rxn.RunReactants(mols)
    if not prods:
        raise ValueError("reaction gave no product")
    p = prods[0][0]
    Chem.SanitizeMol(p)
    return p


def assemble(bb1: Chem.Mol, bb2: Chem.Mol, bb3: Chem.Mol) -> str:
    m = _one(SNAR, CORE, _one(DY_AMIDE, bb1))
    m = _one(SNAR, m, bb2)
    m = _one(SNAR, m, bb3)
    # Current RDKit writes the linker as `[NH][Dy]`; the competition files (older RDKit) write `N[Dy]`,
    # the same molecule. Keep the competition's text form.
    return Chem.MolToSmiles(m).replace("[NH][Dy]", "N[Dy]")


def features(m: Chem.Mol) -> np.ndarray:
    v = [len(m.GetSubstructMatches(p)) for p in FEATURE_PATTERNS.values()]
    return np.array(v + [Crippen.MolLogP(m)], dtype=np.float64)  # type: ignore[attr-defined]  # (rdkit stubs)


def scores(f: np.ndarray) -> np.ndarray:
    """f: (n, 10) summed building-block features -> (n, 3) scores, columns BRD4, HSA, sEH."""
    het, ome, carb, hal, fl, so2, nitro, oh, ph, logp = f.T
    brd4 = 1.2 * het + 0.8 * ome + 0.6 * carb + 1.0 * ((het > 0) & (carb > 0)) - 0.3 * nitro
    hsa = 0.6 * logp + 0.8 * hal + 0.5 * ph - 0.5 * oh
    seh = 1.0 * carb + 1.2 * fl + 0.8 * so2 + 0.8 * ((hal > 0) & (carb > 0))
    s = np.stack([brd4, hsa, seh], axis=1)
    return (s - s.mean(0)) / s.std(0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEMO_ROOT / "belka")
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)

    bb1_all, amines_all = building_blocks()
    # keep building blocks that give a vocabulary-clean product with a small partner
    probe = Chem.MolFromSmiles("CN")
    bb1_all = [m for m in bb1_all if _ok(assemble(m, probe, probe))]
    amines_all = [m for m in amines_all if _ok(assemble(bb1_all[0], m, probe))]
    print(f"building blocks: {len(bb1_all)} amino acids, {len(amines_all)} amines")

    def split_pool(pool):
        idx = rng.permutation(len(pool))
        k = int(round(len(pool) * RESERVED))
        return [pool[i] for i in idx[k:]], [pool[i] for i in idx[:k]]

    bb1_train, bb1_res = split_pool(bb1_all)
    am_train, am_res = split_pool(amines_all)

    def sample(n, pick, used):
        out = []
        while len(out) < n:
            a, b, c = pick()
            if b is c:
                continue
            smi = assemble(a, b, c)
            if smi in used or not _ok(smi):  # (a, b, c) and (a, c, b) are the same molecule
                continue
            used.add(smi)
            out.append((a, b, c, smi))
        return out

    def choice(pool):
        return pool[rng.integers(len(pool))]

    used: set = set()
    train = sample(N_TRAIN, lambda: (choice(bb1_train), choice(am_train), choice(am_train)), used)
    share = sample(N_TEST // 2, lambda: (choice(bb1_train), choice(am_train), choice(am_train)), used)

    def pick_nonshare():
        while True:
            new = rng.random(3) < 0.5
            if new.any():
                return (
                    choice(bb1_res if new[0] else bb1_train),
                    choice(am_res if new[1] else am_train),
                    choice(am_res if new[2] else am_train),
                )

    nonshare = sample(N_TEST - N_TEST // 2, pick_nonshare, used)
    mols = train + share + nonshare

    feat_cache: dict[int, np.ndarray] = {}

    def bb_feat(m):
        if id(m) not in feat_cache:
            feat_cache[id(m)] = features(m)
        return feat_cache[id(m)]

    f = np.stack([bb_feat(a) + bb_feat(b) + bb_feat(c) for a, b, c, _ in mols])
    noisy = scores(f) + NOISE * rng.standard_normal((len(mols), 3))
    thr = np.array([np.quantile(noisy[:, j], 1 - RATES[p]) for j, p in enumerate(PROTEINS)])
    binds = (noisy > thr).astype(np.int64)

    fmoc_cache: dict[int, str] = {}

    def bb_smiles(m, fmoc=False):
        if not fmoc:
            return Chem.MolToSmiles(m)
        if id(m) not in fmoc_cache:
            fmoc_cache[id(m)] = Chem.MolToSmiles(_one(PROTECT, m))
        return fmoc_cache[id(m)]

    def long_rows(items, labels, start_id, keep):
        rows, i = [], start_id
        for (a, b, c, smi), lab, k in zip(items, labels, keep):
            for j, p in enumerate(PROTEINS):
                if not k[j]:
                    continue
                rows.append((i, bb_smiles(a, True), bb_smiles(b), bb_smiles(c), smi, p, int(lab[j])))
                i += 1
        cols = [
            "id",
            "buildingblock1_smiles",
            "buildingblock2_smiles",
            "buildingblock3_smiles",
            "molecule_smiles",
            "protein_name",
            "binds",
        ]
        return pd.DataFrame(rows, columns=cols)

    n_tr = len(train)
    tr = long_rows(train, binds[:n_tr], 0, np.ones((n_tr, 3), bool))
    keep = np.ones((len(mols) - n_tr, 3), bool)
    for r in range(len(keep)):
        if rng.random() >= 0.6:
            k = int(rng.integers(1, 3))
            keep[r] = False
            keep[r, rng.choice(3, size=k, replace=False)] = True
    te = long_rows(share + nonshare, binds[n_tr:], int(tr["id"].iloc[-1]) + 1, keep)
    groups = np.repeat(np.array(["share"] * len(share) + ["nonshare"] * len(nonshare)), keep.sum(1))
    solution = te[["id", "protein_name"]].assign(split_group=groups, binds=te["binds"].to_numpy())

    args.out.mkdir(parents=True, exist_ok=True)
    for name, df in (("train", tr), ("test", te.drop(columns="binds")), ("test_solution", solution)):
        with atomic_path(args.out / f"{name}.parquet") as tmp:
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp, compression="zstd")
    print(
        f"train: {len(train)} molecules, {len(tr)} rows, positives "
        + ", ".join(f"{p} {int(tr.loc[tr.protein_name == p, 'binds'].sum())}" for p in PROTEINS)
    )
    print(f"test: {len(mols) - n_tr} molecules ({len(share)} share, {len(nonshare)} nonshare), {len(te)} rows")
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e3:.0f} kB" for p in sorted(args.out.glob("*.parquet")))
    print("sizes: " + sizes)


if __name__ == "__main__":
    main()
