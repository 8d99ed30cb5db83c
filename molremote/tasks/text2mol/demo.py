#!/usr/bin/env python
"""Build the text2mol demo data set: molremote/demo_data/text2mol/ in the exact ALTEGRAD/ChEBI-20 layout.

    .venv/bin/python -m molremote.tasks.text2mol.demo [--out DIR] [--n 1500]   (or scripts/make_demo_text2mol.py)

Deterministic: the same RDKit version gives byte-identical files.

Molecules (real): RDKit ships `Data/NCI/first_5K.smi` (5,000 NCI compounds). Each SMILES is reduced to
its largest fragment; molecules with elements outside C H N O S P F Cl Br I, fewer than 6 or more than 50
heavy atoms, or duplicate canonical SMILES are dropped; 1,000 of the rest are drawn with a fixed seed and
split 700 train / 150 val / 150 test. The CID of a molecule is its 1-based line number in
first_5K.smi, so every demo molecule can be traced back to the file.

Graphs (real, same recipe as ChEBI-20): `raw/<cid>.graph`, one node per heavy atom carrying its RDKit Morgan
radius-1 environment id (radius 0 when the atom has none), bonds as edges in both directions.

Descriptions (SYNTHETIC, generated from the structure, not ChEBI text): a few sentences chosen from
templates with varied phrasing (seeded per CID) stating a size class from the heavy-atom count, the
ring systems (number of rings, aromatic / heteroaromatic / aliphatic), the heteroatoms and halogens with
counts, and the functional groups found with SMARTS patterns (carboxylic acid, ester, amide, amines,
hydroxy, phenol, ketone, aldehyde, ether, nitro, nitrile, sulfonamide, ...), e.g.
"The molecule is a medium-sized aromatic compound. It contains two rings, one of them aromatic. It bears
a carboxylic acid group and a nitro group. Besides carbon it contains nitrogen and oxygen."
The text therefore describes what the graph shows, and retrieval is learnable, but it is far easier and
far less varied than ChEBI-20's curated descriptions.

Token embeddings (SYNTHETIC, Mol2Vec-like): Mol2Vec trains word2vec on "sentences" of Morgan identifiers.
Here the same identifiers are counted over all ~4,600 usable first_5K.smi molecules, identifiers seen
fewer than 3 times become 'UNK' (as Mol2Vec does with rare words), two identifiers co-occur when they
belong to the same atom or to bonded atoms, and the 300-d vectors are the truncated SVD (U * sqrt(S)) of
the positive pointwise mutual information of that co-occurrence matrix. Only the identifiers present in
the demo graphs (and 'UNK') are stored, as float32, in `token_embedding_dict.npy` (a pickled dict, loaded
with `np.load(p, allow_pickle=True)[()]`, exactly like the real file).

Test files: `test_cids.txt` lists the test molecules in one seeded order and `test_text.txt` their
descriptions in another, as in the challenge (texts are not aligned with the CIDs). The hidden pairing is
recoverable by re-running this module's `split()`.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import numpy as np

from ..base import DEMO_ROOT
from .data import (
    UNK,
    atomic_write_text,
    graph_from_mol,
    save_token_embeddings,
    write_graph,
)

SEED = 20240201
ALLOWED = {"C", "N", "O", "S", "P", "F", "Cl", "Br", "I"}
N_TRAIN, N_VAL, N_TEST = 700, 150, 150  # small: a frozen MiniLM embeds all 1,000 texts on CPU at every run start
DIM = 300  # Mol2Vec's dimension (the ALTEGRAD file's vectors are 300-d)
MIN_COUNT = 3  # Mol2Vec maps rare identifiers to UNK; 3 keeps ~most ids of a 4k-molecule corpus

NUM = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]

# (name, SMARTS, synonyms for the phrase "a/an <x>")
GROUPS = [
    ("carboxylic acid", "[CX3](=O)[OX2H1,OX1-]", ["a carboxylic acid group", "a carboxy group", "a COOH group"]),
    ("ester", "[#6][CX3](=O)[OX2H0][#6]", ["an ester group", "an ester linkage", "a carboxylic ester"]),
    ("amide", "[NX3][CX3](=[OX1])[#6]", ["an amide group", "a carboxamide", "an amide bond"]),
    ("urea", "[NX3][CX3](=[OX1])[NX3]", ["a urea group", "a ureido moiety"]),
    ("primary amine", "[NX3;H2;!$(NC=O);!$(NS=O)][#6]", ["a primary amino group", "an NH2 group", "a primary amine"]),
    ("secondary amine", "[NX3;H1;!$(NC=O);!$(NS=O);!$(N-a)]([#6])[#6]", ["a secondary amine", "an NH group"]),
    (
        "tertiary amine",
        "[NX3;H0;!$(NC=O);!$(NS=O);!$(N-a);!$(N=*);!$([N+])]([#6])([#6])[#6]",
        ["a tertiary amine", "a trisubstituted nitrogen"],
    ),
    ("aniline", "[NX3;!$(NC=O);!$(NS=O)]-c", ["an aromatic amine", "an anilino nitrogen"]),
    ("alcohol", "[OX2H][CX4]", ["a hydroxy group", "an alcohol group", "an aliphatic OH"]),
    ("phenol", "[OX2H]c", ["a phenolic hydroxy group", "a phenol", "an aromatic OH"]),
    ("ketone", "[#6][CX3](=O)[#6]", ["a ketone", "a keto group", "a carbonyl flanked by carbons"]),
    ("aldehyde", "[CX3H1](=O)[#6]", ["an aldehyde", "a formyl group"]),
    ("ether", "[OD2]([#6])[#6;!$(C=O)]", ["an ether oxygen", "an ether linkage"]),
    ("nitro", "[N+](=O)[O-]", ["a nitro group", "an NO2 substituent"]),
    ("nitrile", "C#N", ["a nitrile", "a cyano group"]),
    ("sulfonamide", "S(=O)(=O)N", ["a sulfonamide", "a sulfamoyl group"]),
    ("sulfonic acid", "S(=O)(=O)[OH]", ["a sulfonic acid", "a sulfo group"]),
    ("thiol", "[SX2H]", ["a thiol", "a sulfanyl group", "an SH group"]),
    ("thioether", "[SX2;H0]([#6])[#6]", ["a thioether", "a sulfide linkage"]),
    ("alkene", "[CX3]=[CX3]", ["a carbon-carbon double bond", "an alkene"]),
    ("alkyne", "C#C", ["a carbon-carbon triple bond", "an alkyne"]),
    ("azo", "[#6]N=N[#6]", ["an azo group", "an N=N bridge"]),
    ("phosphate", "P(=O)(O)O", ["a phosphate or phosphonate group", "a phosphorus acid ester"]),
    ("hydrazine", "[NX3][NX3]", ["a hydrazine unit", "an N-N single bond"]),
    ("imine", "[CX3]=[NX2;!$(N=N)]", ["an imine", "a C=N double bond"]),
    ("thiocarbonyl", "C=S", ["a thiocarbonyl", "a C=S group"]),
]
ELEMENT_NAMES = {
    "N": "nitrogen",
    "O": "oxygen",
    "S": "sulfur",
    "P": "phosphorus",
    "F": "fluorine",
    "Cl": "chlorine",
    "Br": "bromine",
    "I": "iodine",
}


def num(k: int) -> str:
    return NUM[k] if k < len(NUM) else str(k)


def join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def load_molecules():
    """[(cid, mol)] for every usable line of first_5K.smi (largest fragment, allowed elements, size)."""
    import rdkit
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    path = Path(rdkit.__file__).parent / "Data" / "NCI" / "first_5K.smi"
    seen, out = set(), []
    for cid, line in enumerate(path.read_text().splitlines(), 1):
        smi = line.split()[0] if line.split() else ""
        m = Chem.MolFromSmiles(smi)
        if m is None:
            continue
        frags = Chem.GetMolFrags(m, asMols=True)
        m = max(frags, key=lambda f: f.GetNumAtoms())
        if not 6 <= m.GetNumAtoms() <= 50:
            continue
        if {a.GetSymbol() for a in m.GetAtoms()} - ALLOWED or not any(a.GetSymbol() == "C" for a in m.GetAtoms()):
            continue
        can = Chem.MolToSmiles(m)
        if can in seen:
            continue
        seen.add(can)
        out.append((cid, Chem.MolFromSmiles(can)))
    return out


def describe(cid: int, mol) -> str:
    from rdkit import Chem
    from rdkit.Chem import rdMolDescriptors as D

    rng = np.random.default_rng([SEED, cid])
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    n = mol.GetNumAtoms()
    size = "small" if n <= 12 else "medium-sized" if n <= 25 else "large"
    rings = D.CalcNumRings(mol)
    arom = D.CalcNumAromaticRings(mol)
    het_arom = D.CalcNumAromaticHeterocycles(mol)
    aliph = rings - arom
    kind = "aromatic" if arom else ("alicyclic" if rings else "acyclic")
    s1 = pick(
        [
            f"The molecule is a {size} {kind} compound.",
            f"This is a {size} {kind} molecule.",
            f"A {size}, {kind} organic compound.",
            f"The compound is {size} and {kind}.",
        ]
    )
    if rings == 0:
        s2 = pick(["It has no rings.", "It is an open-chain structure without rings.", "No ring is present."])
    else:
        parts = []
        if arom:
            parts.append(f"{num(arom)} aromatic" + (f" including {num(het_arom)} heteroaromatic" if het_arom else ""))
        if aliph:
            parts.append(f"{num(aliph)} aliphatic")
        s2 = pick(
            [
                f"It contains {num(rings)} ring{'s' * (rings > 1)}: {join(parts)}.",
                f"Its ring system has {num(rings)} ring{'s' * (rings > 1)}, {join(parts)}.",
                f"There {'are' if rings > 1 else 'is'} {num(rings)} ring{'s' * (rings > 1)} ({join(parts)}).",
            ]
        )
    found = []
    for name, smarts, syn in GROUPS:
        k = len(mol.GetSubstructMatches(Chem.MolFromSmarts(smarts)))
        if k:
            phrase = pick(syn)  # drawn even when unused, so each molecule's choices stay independent
            found.append(phrase if k == 1 else f"{num(k)} {name} groups")
    order = rng.permutation(len(found))
    found = [found[i] for i in order]
    if found:
        s3 = pick(
            [
                f"It bears {join(found)}.",
                f"Functional groups: {join(found)}.",
                f"It carries {join(found)}.",
                f"The structure features {join(found)}.",
            ]
        )
    else:
        s3 = pick(["It has no common functional group.", "No functional group beyond the carbon skeleton."])
    counts: dict[str, int] = {}
    for a in mol.GetAtoms():
        counts[a.GetSymbol()] = counts.get(a.GetSymbol(), 0) + 1
    het = [
        f"{num(counts[e])} {ELEMENT_NAMES[e]} atom{'s' * (counts[e] > 1)}"
        if e in ("F", "Cl", "Br", "I", "S", "P")
        else ELEMENT_NAMES[e]
        for e in ELEMENT_NAMES
        if e in counts
    ]
    if het:
        s4 = pick(
            [
                f"Besides carbon it contains {join(het)}.",
                f"Heteroatoms: {join(het)}.",
                f"Its heteroatoms are {join(het)}.",
            ]
        )
    else:
        s4 = pick(["It is a hydrocarbon.", "It contains only carbon and hydrogen."])
    sentences = [s1, s2, s3, s4]
    tail = sentences[1:]
    rng.shuffle(tail)
    return " ".join([s1, *tail])


def token_embeddings(mols, keep_ids: set[str]) -> dict[str, np.ndarray]:
    """PPMI + truncated SVD of Morgan-id co-occurrence (same atom or bonded atoms) over the corpus."""
    from rdkit.Chem import rdFingerprintGenerator
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import svds

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=1)
    atom_words = []  # per molecule: per atom, the list of its identifiers (r0, r1)
    counts: dict[str, int] = {}
    for _, m in mols:
        ao = rdFingerprintGenerator.AdditionalOutput()
        ao.AllocateBitInfoMap()
        gen.GetSparseCountFingerprint(m, additionalOutput=ao)
        per_atom: list[list[str]] = [[] for _ in range(m.GetNumAtoms())]
        for env, hits in ao.GetBitInfoMap().items():
            for atom, _r in hits:
                per_atom[atom].append(str(env))
        for ws in per_atom:
            for w in ws:
                counts[w] = counts.get(w, 0) + 1
        atom_words.append((m, per_atom))
    vocab = sorted(w for w, c in counts.items() if c >= MIN_COUNT) + [UNK]
    index = {w: i for i, w in enumerate(vocab)}
    tok = lambda w: index.get(w, index[UNK])  # noqa: E731
    rows, cols = [], []
    for m, per_atom in atom_words:
        ctx = [[tok(w) for w in ws] for ws in per_atom]
        for a in range(m.GetNumAtoms()):
            neigh = [a] + [n.GetIdx() for n in m.GetAtomWithIdx(a).GetNeighbors()]
            for u in ctx[a]:
                for b in neigh:
                    for v in ctx[b]:
                        if u != v or b != a:
                            rows.append(u)
                            cols.append(v)
    V = len(vocab)
    C = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(V, V)).tocsr()
    total = C.sum()
    rs = np.asarray(C.sum(axis=1)).ravel()
    cs = np.asarray(C.sum(axis=0)).ravel()
    C = C.tocoo()
    pmi = np.log(C.data * total / (rs[C.row] * cs[C.col]))
    keep = pmi > 0
    P = coo_matrix((pmi[keep], (C.row[keep], C.col[keep])), shape=(V, V)).tocsr()
    k = min(DIM, V - 2)
    u, s, _ = svds(P, k=k, random_state=SEED)  # deterministic: ARPACK start vector from the seed
    order = np.argsort(-s)
    vec = u[:, order] * np.sqrt(s[order])
    sign = np.sign(vec[np.abs(vec).argmax(axis=0), np.arange(k)])  # SVD signs are arbitrary: fix them
    vec = vec * sign
    if k < DIM:
        vec = np.pad(vec, ((0, 0), (0, DIM - k)))
    return {w: vec[i].astype(np.float32) for w, i in index.items() if w in keep_ids or w == UNK}


def split(mols):
    rng = np.random.default_rng(SEED)
    chosen = [mols[i] for i in sorted(rng.choice(len(mols), N_TRAIN + N_VAL + N_TEST, replace=False))]
    order = rng.permutation(len(chosen))
    chosen = [chosen[i] for i in order]
    return (
        chosen[:N_TRAIN],
        chosen[N_TRAIN : N_TRAIN + N_VAL],
        chosen[N_TRAIN + N_VAL :],
        rng.permutation(N_TEST),
        rng.permutation(N_TEST),
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEMO_ROOT / "text2mol")
    args = ap.parse_args(argv)
    mols = load_molecules()
    train, val, test, cid_order, text_order = split(mols)
    out: Path = args.out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "raw").mkdir(parents=True)
    ids: set[str] = set()
    for cid, m in train + val + test:
        g = graph_from_mol(m)
        ids.update(g.ids)
        write_graph(tmp / "raw" / f"{cid}.graph", g)
    for name, part in (("train.tsv", train), ("val.tsv", val)):
        atomic_write_text(tmp / name, "".join(f"{cid}\t{describe(cid, m)}\n" for cid, m in part))
    atomic_write_text(tmp / "test_cids.txt", "".join(f"{test[i][0]}\n" for i in cid_order))
    atomic_write_text(tmp / "test_text.txt", "".join(f"{describe(*test[i])}\n" for i in text_order))
    emb = token_embeddings(mols, ids)
    save_token_embeddings(tmp / "token_embedding_dict.npy", emb)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    unk = len(ids - set(emb))
    print(
        f"{out}: {len(mols)} usable molecules, {len(train)}/{len(val)}/{len(test)} train/val/test, "
        f"{len(emb) - 1} token vectors (+UNK), {unk} graph ids mapped to UNK"
    )


if __name__ == "__main__":
    main()
