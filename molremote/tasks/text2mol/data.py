"""Text2Mol / ALTEGRAD (ChEBI-20) data files and the LRAP metric, torch-free.

Layout of a data folder (the ALTEGRAD 2023/24 challenge layout):

    raw/<cid>.graph           `edgelist:` / lines `i j` (both directions) / blank line /
                              `idx to identifier:` / lines `i <substructure id>`
    token_embedding_dict.npy  pickled dict: substructure id (str) -> 300-d Mol2Vec vector, plus 'UNK'
    train.tsv, val.tsv        `CID<TAB>description`, no header
    test_cids.txt             one CID per line (the submission's column order)
    test_text.txt             one description per line (the submission's row order)

Substructure ids are RDKit Morgan radius-1 environment ids (Mol2Vec's "words"), so `.graph` files can be
made from any SMILES with `graph_from_smiles`.

Prediction files (`predictions/<split>.parquet`, read by evaluate/ensemble without torch): one row per
sample, columns `id` (int64 CID of the molecule whose embedding is `mol_emb`), `text_id` (int64: for
train/valid rows the CID the text describes, so rows are pairs; for test rows the 0-based line of
test_text.txt) and `text_emb`, `mol_emb` (fixed-size lists of float32, L2-normalised).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...fsutil import atomic_path, atomic_text_output, write_text

UNK = "UNK"


# ------------------------------------------------------------------------------------------ .graph files
@dataclass(frozen=True)
class Graph:
    edges: np.ndarray  # (E, 2) int64, both directions listed, as in the file
    ids: list[str]  # substructure id per node, node i at position i

    @property
    def n_nodes(self) -> int:
        return len(self.ids)


def read_graph(path: str | Path) -> Graph:
    """Parse one `.graph` file; a DataError names the file and line when it is malformed."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise DataError(f"cannot read graph file {path}: {e}") from None
    if not lines or lines[0].strip() != "edgelist:":
        raise DataError(f"{path}: line 1 must be 'edgelist:'")
    edges: list[tuple[int, int]] = []
    i = 1
    while i < len(lines) and lines[i].strip():
        parts = lines[i].split()
        if len(parts) != 2 or not all(p.lstrip("-").isdigit() for p in parts):
            raise DataError(f"{path}: line {i + 1}: expected an edge 'i j', got {lines[i]!r}")
        edges.append((int(parts[0]), int(parts[1])))
        i += 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or lines[i].strip() != "idx to identifier:":
        raise DataError(f"{path}: expected 'idx to identifier:' after the edge list (line {i + 1})")
    ids: dict[int, str] = {}
    for j in range(i + 1, len(lines)):
        parts = lines[j].split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{path}: line {j + 1}: expected 'i <identifier>', got {lines[j]!r}")
        ids[int(parts[0])] = parts[1]
    n = len(ids)
    if n == 0:
        raise DataError(f"{path}: the graph has no nodes (no lines after 'idx to identifier:')")
    if sorted(ids) != list(range(n)):
        raise DataError(f"{path}: node indices must be 0..{n - 1}")
    pairs = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n):
        raise DataError(f"{path}: an edge refers to a node outside 0..{n - 1}")
    return Graph(edges=pairs, ids=[ids[k] for k in range(n)])


def format_graph(g: Graph) -> str:
    out = ["edgelist:"]
    out += [f"{a} {b}" for a, b in g.edges.tolist()]
    out += ["", "idx to identifier:"]
    out += [f"{k} {s}" for k, s in enumerate(g.ids)]
    return "\n".join(out) + "\n"


def write_graph(path: str | Path, g: Graph) -> Path:
    return atomic_write_text(Path(path), format_graph(g))


def graph_from_smiles(smiles: str) -> Graph:
    """The ALTEGRAD graph of a molecule: one node per heavy atom carrying its Morgan radius-1 environment
    id (radius 0 when the atom has no radius-1 environment of its own, as Mol2Vec's sentences do), edges
    from the bonds in both directions."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise DataError(f"RDKit cannot parse SMILES {smiles!r}")
    return graph_from_mol(mol)


def morgan_atom_ids(mol) -> list[str]:
    """Per atom: the radius-1 Morgan environment id, else the radius-0 id (same ids as
    `AllChem.GetMorganFingerprint(mol, 1, bitInfo=info)`; the generator API avoids its deprecation)."""
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=1)
    ao = rdFingerprintGenerator.AdditionalOutput()
    ao.AllocateBitInfoMap()
    gen.GetSparseCountFingerprint(mol, additionalOutput=ao)
    per_atom: dict[int, dict[int, int]] = {}
    for env_id, hits in ao.GetBitInfoMap().items():
        for atom, radius in hits:
            per_atom.setdefault(atom, {})[radius] = env_id
    out = []
    for a in range(mol.GetNumAtoms()):
        r = per_atom.get(a, {})
        out.append(str(r[1] if 1 in r else r[0]))
    return out


def graph_from_mol(mol) -> Graph:
    edges = []
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        edges += [(i, j), (j, i)]
    return Graph(edges=np.asarray(edges, dtype=np.int64).reshape(-1, 2), ids=morgan_atom_ids(mol))


# ------------------------------------------------------------------------------------------- other files
def load_token_embeddings(path: str | Path) -> dict[str, np.ndarray]:
    """`token_embedding_dict.npy`: a pickled {id: vector} dict with an 'UNK' key (ALTEGRAD loads it the
    same way, so allow_pickle is required; the file comes from the data folder the user points at)."""
    path = Path(path)
    try:
        d = np.load(path, allow_pickle=True)[()]
    except Exception as e:  # noqa: BLE001 - any unpickling problem is a data problem
        raise DataError(f"cannot load token embeddings {path}: {type(e).__name__}: {e}") from None
    if not isinstance(d, dict) or not d:
        raise DataError(f"{path}: expected a pickled dict of substructure id -> vector")
    if UNK not in d:
        raise DataError(f"{path}: the token embedding dict has no '{UNK}' key")
    dims = {np.asarray(v).shape for v in d.values()}
    if len(dims) != 1 or len(next(iter(dims))) != 1:
        raise DataError(f"{path}: vectors must all be 1-d of the same size, found shapes {sorted(dims)[:3]}")
    return {str(k): np.asarray(v, dtype=np.float32) for k, v in d.items()}


def save_token_embeddings(path: str | Path, d: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.array(d, dtype=object), allow_pickle=True)
    return path


def embedding_matrix(d: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, int]]:
    """(V, dim) float32 matrix and id -> row; unknown ids map to the 'UNK' row (`index[UNK]`)."""
    keys = sorted(d)
    return np.stack([d[k] for k in keys]).astype(np.float32), {k: i for i, k in enumerate(keys)}


def read_pairs(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """`CID<TAB>description` lines, no header -> (cids int64, descriptions)."""
    path = Path(path)
    cids, texts = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        cid, sep, text = line.partition("\t")
        if not sep or not cid.strip().isdigit():
            raise DataError(f"{path}: line {n}: expected 'CID<TAB>description', got {line[:80]!r}")
        cids.append(int(cid))
        texts.append(text.strip())
    if not cids:
        raise DataError(f"{path}: no 'CID<TAB>description' lines")
    return np.asarray(cids, dtype=np.int64), texts


def read_cids(path: str | Path) -> np.ndarray:
    path = Path(path)
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if not s.isdigit():
            raise DataError(f"{path}: line {n}: expected an integer CID, got {s[:40]!r}")
        out.append(int(s))
    return np.asarray(out, dtype=np.int64)


def read_lines(path: str | Path) -> list[str]:
    """test_text.txt: one description per line (ALTEGRAD strips each line and keeps them all)."""
    return [line.strip() for line in Path(path).read_text().splitlines()]


def atomic_write_text(path: Path, text: str) -> Path:
    return write_text(path, text)


# ------------------------------------------------------------------------------------------------ metric
def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sklearn's cosine_similarity (rows of a vs rows of b): the metric's official definition."""
    from sklearn.metrics.pairwise import cosine_similarity as cs

    return cs(np.asarray(a), np.asarray(b))


def lrap_from_similarity(sim: np.ndarray, chunk: int = 1024) -> float:
    """sklearn `label_ranking_average_precision_score(np.eye(n), sim)` for a square similarity matrix.

    Hand-written because sklearn ranks every row (O(n^2 log n) with a Python loop per row); with one
    positive per row LRAP is the mean of 1 / rank of the diagonal, where rank counts the columns scoring
    >= the diagonal (ties count against, as sklearn does)."""
    sim = np.asarray(sim)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"need a square similarity matrix, got shape {sim.shape}")
    n = sim.shape[0]
    if n == 0:
        raise ValueError("empty similarity matrix")
    total = 0.0
    for s in range(0, n, chunk):
        block = sim[s : s + chunk]
        diag = block[np.arange(block.shape[0]), np.arange(s, s + block.shape[0])]
        ranks = (block >= diag[:, None]).sum(axis=1)
        total += float((1.0 / ranks).sum())
    return total / n


def lrap(text_emb: np.ndarray, mol_emb: np.ndarray) -> float:
    """The challenge metric: rows are text queries, columns molecules, pair i is (text i, molecule i)."""
    if len(text_emb) != len(mol_emb):
        raise ValueError(f"{len(text_emb)} text embeddings vs {len(mol_emb)} molecule embeddings")
    return lrap_from_similarity(cosine_similarity(text_emb, mol_emb))


def random_lrap(n: int) -> float:
    """Expected LRAP of a random ranking of n candidates with one positive: E[1/rank] = H_n / n."""
    return float(np.sum(1.0 / np.arange(1, n + 1)) / n)


# ----------------------------------------------------------------------------------- prediction files
def write_embeddings_parquet(
    path: Path, ids: np.ndarray, text_ids: np.ndarray, text_emb: np.ndarray, mol_emb: np.ndarray
) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def fixed(a: np.ndarray) -> pa.Array:
        a = np.ascontiguousarray(a, dtype=np.float32)
        return pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), a.shape[1])

    table = pa.table(
        {
            "id": pa.array(np.asarray(ids, dtype=np.int64)),
            "text_id": pa.array(np.asarray(text_ids, dtype=np.int64)),
            "text_emb": fixed(text_emb),
            "mol_emb": fixed(mol_emb),
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_embeddings_parquet(path: str | Path) -> dict[str, np.ndarray]:
    """-> {"id", "text_id", "text_emb", "mol_emb"} as numpy arrays (embeddings (n, d) float32)."""
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    missing = {"id", "text_id", "text_emb", "mol_emb"} - set(t.column_names)
    if missing:
        raise DataError(f"{path}: not a text2mol prediction file (missing columns {sorted(missing)})")
    out = {"id": t["id"].to_numpy(), "text_id": t["text_id"].to_numpy()}
    for c in ("text_emb", "mol_emb"):
        col = t[c].combine_chunks()
        width = col.type.list_size
        out[c] = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, width)
    return out


def write_similarity_submission(path: Path, sim: np.ndarray) -> Path:
    """ALTEGRAD submission: header `ID,0,1,...,m-1`, row k = text line k, column j = test_cids[j].
    float32 values with 9 significant digits round-trip exactly (no ties made by rounding)."""
    sim = np.asarray(sim, dtype=np.float32)
    header = "ID," + ",".join(str(j) for j in range(sim.shape[1]))
    with atomic_text_output(path) as f:
        f.write(header + "\n")
        for k in range(sim.shape[0]):
            f.write(f"{k}," + ",".join(f"{v:.9g}" for v in sim[k].tolist()) + "\n")
    return path
