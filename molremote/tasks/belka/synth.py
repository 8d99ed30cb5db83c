"""BELKA-shaped long parquet files of any size, for benchmarks and tests of the full-scale path.

Not a demo data set (the shipped demo is `scripts/make_demo_data.py`, built with RDKit from real
molecules): this writes tens of millions of rows in seconds, so `prepare` can be measured at the real
file's scale. Molecules are built the way BELKA's are, as text: a triazine core carrying three building
blocks, building block 1 ending in the DNA-linker amide `C(=O)N[Dy]`, from pools of 271 / 693 / 872
building blocks (BELKA's pool sizes) made of real fragment SMILES. Strings are assembled with Arrow
compute kernels, not per row in Python. Rows are molecule-major, BRD4 / HSA / sEH, like the real file; for
`split="test"` each molecule keeps a random non-empty subset of the proteins and there is no `binds`.
Labels: each building block has a per-protein score; a molecule binds when the sum is high (~0.5-1%).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PROTEINS = ("BRD4", "HSA", "sEH")
POOL_SIZES = (271, 693, 872)
MAX_LENGTH = 142
# Fragments of real building blocks (amines, aromatics, halides, heterocycles), all in BELKA's vocabulary.
_FRAGMENTS = [
    "C",
    "CC",
    "C(C)C",
    "C1CC1",
    "C1CCCC1",
    "c1ccccc1",
    "c1ccc(F)cc1",
    "c1ccc(Cl)cc1",
    "c1ccc(Br)cc1",
    "c1ccncc1",
    "c1cccnc1",
    "c1ccsc1",
    "c1ccoc1",
    "c1cn[nH]c1",
    "OC",
    "C(=O)OC",
    "C(F)(F)F",
    "C#N",
    "S(=O)(=O)C",
    "C1CCOCC1",
    "C1CCNCC1",
    "[C@H](C)",
    "[C@@H](O)",
    "c1ccc2ccccc2c1",
    "Cc1ncc(C)o1",
    "c1cc(I)ccc1",
    "C=C",
    "C#C",
    "N1CCOCC1",
    "c1nc2ccccc2s1",
    "[N+](=O)[O-]",
    "/C=C/",
    "[Si](C)(C)C",
    "B(O)O",
    "c1ccc(cc1)[S@](=O)C",
    "C(=O)N",
]


def _pool(rng: np.random.Generator, size: int, max_len: int, prefix: str = "", suffix: str = "") -> list[str]:
    out: set[str] = set()
    while len(out) < size:
        k = int(rng.integers(1, 4))
        body = "".join(rng.choice(_FRAGMENTS, k))
        s = f"{prefix}{body}{suffix}"
        if len(s) <= max_len:
            out.add(s)
    return sorted(out)


def write(
    path: str | Path,
    n_molecules: int,
    *,
    split: str = "train",
    seed: int = 0,
    chunk_molecules: int = 1_000_000,
    positive_rate: float = 0.01,
) -> Path:
    """Write a BELKA-like long parquet with `n_molecules` molecules; returns the path."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    pool_rng = np.random.default_rng(12345)  # pools are the same for train and test files (shared blocks)
    bb1 = _pool(pool_rng, POOL_SIZES[0], 38, prefix="N", suffix="C(=O)O")
    bb2 = _pool(pool_rng, POOL_SIZES[1], 34, prefix="N")
    bb3 = _pool(pool_rng, POOL_SIZES[2], 34, prefix="N")
    pools = [pa.array(p) for p in (bb1, bb2, bb3)]
    # molecule = <bb2 amine>c1nc(<bb3 amine>)nc(<bb1 amine ... C(=O)N[Dy]>)n1, written from the pools'
    # bodies (the acid of bb1 becomes the linker amide, as in BELKA).
    bodies = [pa.array([s[: -len("C(=O)O")] for s in bb1]), pools[1], pools[2]]
    scores = [pool_rng.normal(size=(len(p), 3)) for p in (bb1, bb2, bb3)]
    threshold = None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("buildingblock1_smiles", pa.string()),
            ("buildingblock2_smiles", pa.string()),
            ("buildingblock3_smiles", pa.string()),
            ("molecule_smiles", pa.string()),
            ("protein_name", pa.string()),
        ]
        + ([("binds", pa.int64())] if split == "train" else [])
    )
    next_id = 0
    sizes = (len(bb1), len(bb2), len(bb3))
    # distinct building-block triples (BELKA's molecules are unique), drawn without replacement
    combos = rng.choice(sizes[0] * sizes[1] * sizes[2], n_molecules, replace=False)
    with pq.ParquetWriter(tmp, schema) as writer:
        for lo in range(0, n_molecules, chunk_molecules):
            m = min(chunk_molecules, n_molecules - lo)
            c = combos[lo : lo + m]
            ids = [c // (sizes[1] * sizes[2]), (c // sizes[2]) % sizes[1], c % sizes[2]]
            mol = pc.binary_join_element_wise(
                bodies[1].take(ids[1]),
                "c1nc(",
                bodies[2].take(ids[2]),
                ")nc(",
                bodies[0].take(ids[0]),
                "C(=O)N[Dy])n1",
                "",
            )
            score = sum(s[i] for s, i in zip(scores, ids))  # (m, 3)
            if threshold is None:
                threshold = np.quantile(score, 1 - positive_rate, axis=0)
            if split == "train":
                keep = np.ones((m, 3), dtype=bool)
            else:  # test: each molecule paired with a random non-empty subset of the proteins
                keep = rng.random((m, 3)) < 0.6
                keep[~keep.any(1), rng.integers(0, 3)] = True
            mol_of_row, prot_of_row = np.nonzero(keep)
            n_rows = len(mol_of_row)
            cols = {
                "id": pa.array(np.arange(next_id, next_id + n_rows, dtype=np.int64)),
                "buildingblock1_smiles": pools[0].take(ids[0][mol_of_row]),
                "buildingblock2_smiles": pools[1].take(ids[1][mol_of_row]),
                "buildingblock3_smiles": pools[2].take(ids[2][mol_of_row]),
                "molecule_smiles": mol.take(pa.array(mol_of_row)),
                "protein_name": pa.array(np.array(PROTEINS)[prot_of_row]),
            }
            if split == "train":
                cols["binds"] = pa.array((score > threshold)[mol_of_row, prot_of_row].astype(np.int64))
            writer.write_table(pa.table(cols, schema=schema))
            next_id += n_rows
    tmp.replace(path)
    return path
