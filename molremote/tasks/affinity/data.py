"""Protein-ligand pair files, torch-free: reading, checking, units, tokens.

A pair file is parquet or CSV with (by default) the columns of `jglaser/binding_affinity` (BindingDB +
PDBbind + MOAD + BioLIP): `seq` (amino acids), `smiles_can` (SMILES) and `neg_log10_affinity_M` (pK);
the column names and the affinity unit come from the task parameters. Rows with a SMILES RDKit cannot
parse or a residue outside the 20 standard amino acids and X are counted, then dropped or refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import DataError

AMINO = "ACDEFGHIKLMNPQRSTVWY"
RESIDUES = AMINO + "X"  # X: unknown residue, common in BindingDB sequences
PROTEIN_VOCAB = len(RESIDUES) + 1  # PAD 0
SMILES_VOCAB = 97  # PAD 0, printable ASCII 32..126 -> 1..95, anything else 96

_PROT_LUT = np.zeros(256, dtype=np.uint8)
for _i, _c in enumerate(RESIDUES, start=1):
    _PROT_LUT[ord(_c)] = _i
_SMI_LUT = np.full(256, 96, dtype=np.uint8)
_SMI_LUT[32:127] = np.arange(1, 96, dtype=np.uint8)


@dataclass
class Pairs:
    """Checked pairs: sequences, SMILES, affinity (pK or score) and the integer id of each distinct protein
    and ligand (`prot`, `lig` index `proteins` / `ligands`). `row` is each pair's row in its file."""

    proteins: list[str]
    ligands: list[str]
    prot: np.ndarray
    lig: np.ndarray
    y: np.ndarray
    row: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)


def read_table(path: Path, columns: list[str]):
    """The named columns of a parquet or CSV file as a pandas DataFrame; a DataError names what is missing."""
    import pandas as pd

    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            have = pq.read_schema(path).names
            missing = [c for c in columns if c not in have]
            if missing:
                raise DataError(f"{path}: column(s) {missing} missing (columns: {have[:12]})")
            return pq.read_table(path, columns=[c for c in have if c in columns or c == "split"]).to_pandas()
        df = pd.read_csv(path)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - any reader failure is this file's problem
        raise DataError(f"cannot read {path}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{path}: column(s) {missing} missing (columns: {list(df.columns)[:12]})")
    return df


def to_pk(values: np.ndarray, unit: str) -> np.ndarray:
    """pK = -log10(molar) for uM / nM; pK and score values are used as they are."""
    v = np.asarray(values, dtype=np.float64)
    if unit == "uM":
        return 6.0 - np.log10(v)
    if unit == "nM":
        return 9.0 - np.log10(v)
    return v


def valid_smiles(smiles: list[str]) -> np.ndarray:
    """RDKit parse per distinct SMILES (errors silenced; they are counted by the caller)."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]  # rdkit stubs omit Boost.Python functions
    return np.array([bool(s) and Chem.MolFromSmiles(s) is not None for s in smiles], dtype=bool)


def valid_sequence(seqs: list[str]) -> np.ndarray:
    allowed = set(RESIDUES)
    return np.array([bool(s) and set(s) <= allowed for s in seqs], dtype=bool)


def read_pairs(
    path: Path,
    *,
    seq_col: str,
    smiles_col: str,
    affinity_col: str | None,
    unit: str,
    invalid: str,
    keep: tuple[str, ...] = (),
) -> Pairs:
    """Read, check and index one pair file. `affinity_col` None: no labels (y = NaN)."""
    cols = [seq_col, smiles_col] + ([affinity_col] if affinity_col else [])
    df = read_table(path, cols)
    if len(df) == 0:
        raise DataError(f"{path}: no rows")
    seq = df[seq_col].astype(str).str.strip().str.upper().to_numpy()
    smi = df[smiles_col].astype(str).str.strip().to_numpy()
    if affinity_col:
        raw = df[affinity_col].to_numpy(dtype=np.float64, na_value=np.nan)
        if unit in ("uM", "nM") and (raw <= 0).any():
            bad = int(np.flatnonzero(raw <= 0)[0])
            raise DataError(f"{path}: {affinity_col} must be > 0 in {unit} (row {bad}: {raw[bad]})")
        y = to_pk(raw, unit)
    else:
        y = np.full(len(df), np.nan)
    proteins, prot = np.unique(seq, return_inverse=True)
    ligands, lig = np.unique(smi, return_inverse=True)
    ok_p = valid_sequence(proteins.tolist())[prot]
    ok_l = valid_smiles(ligands.tolist())[lig]
    ok_y = np.isfinite(y) if affinity_col else np.ones(len(y), bool)
    dropped = {
        "invalid_smiles": int((~ok_l).sum()),
        "nonstandard_residues": int((~ok_p).sum()),
        "missing_affinity": int((~ok_y).sum()),
    }
    keep_rows = ok_p & ok_l & ok_y
    if not keep_rows.all() and invalid == "refuse":
        i = int(np.flatnonzero(~keep_rows)[0])
        what = (
            f"SMILES {smi[i]!r} does not parse (RDKit)"
            if not ok_l[i]
            else f"sequence has a residue outside {RESIDUES}"
            if not ok_p[i]
            else f"{affinity_col} is missing"
        )
        raise DataError(
            f"{path}: row {i}: {what}; {dropped} bad rows in all (task.invalid='refuse'; 'drop' drops and counts them)"
        )
    rows = np.flatnonzero(keep_rows)
    if len(rows) == 0:
        raise DataError(f"{path}: every row is invalid ({dropped})")
    seq, smi, y = seq[rows], smi[rows], y[rows]
    proteins, prot = np.unique(seq, return_inverse=True)
    ligands, lig = np.unique(smi, return_inverse=True)
    extra = {c: df[c].to_numpy()[rows] for c in keep if c in df.columns}
    return Pairs(proteins.tolist(), ligands.tolist(), prot.reshape(-1), lig.reshape(-1), y, rows, extra, dropped)


def tokenize(strings: list[str], lut: np.ndarray, max_length: int) -> np.ndarray:
    """(n, max_length) uint8 tokens, left-aligned, PAD 0 after; longer strings keep their head."""
    out = np.zeros((len(strings), max_length), dtype=np.uint8)
    for i, s in enumerate(strings):
        b = np.frombuffer(s[:max_length].encode("latin-1", "replace"), dtype=np.uint8)
        out[i, : len(b)] = lut[b]
    return out


def protein_tokens(seqs: list[str], max_length: int) -> np.ndarray:
    return tokenize(seqs, _PROT_LUT, max_length)


def smiles_tokens(smiles: list[str], max_length: int) -> np.ndarray:
    return tokenize(smiles, _SMI_LUT, max_length)


def scaffolds(smiles: list[str]) -> list[str]:
    """Bemis-Murcko scaffold SMILES per molecule (RDKit); acyclic molecules get '' (one group)."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem.Scaffolds import MurckoScaffold

    RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]  # rdkit stubs omit Boost.Python functions
    out = []
    for s in smiles:
        m = Chem.MolFromSmiles(s)
        out.append(MurckoScaffold.MurckoScaffoldSmiles(mol=m) if m is not None else "")
    return out


# ----------------------------------------------------------------------------------- prediction files
PRED_COLUMNS = ("id", "prot_id", "lig_id", "y", "affinity", "scale", "prot_emb", "lig_emb")


def write_predictions(path: Path, cols: dict[str, np.ndarray]) -> Path:
    """predictions/<split>.parquet: id (row of the pair file), prot_id / lig_id (distinct protein / ligand
    index), y (true affinity, NaN when unknown), affinity (predicted; NaN without a regression head),
    scale (the learned logit scale), prot_emb / lig_emb (L2-normalised float32 lists)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ...fsutil import atomic_path

    def fixed(a: np.ndarray) -> pa.Array:
        a = np.ascontiguousarray(a, dtype=np.float32)
        return pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), a.shape[1])

    table = pa.table(
        {
            "id": pa.array(np.asarray(cols["id"], np.int64)),
            "prot_id": pa.array(np.asarray(cols["prot_id"], np.int64)),
            "lig_id": pa.array(np.asarray(cols["lig_id"], np.int64)),
            "y": pa.array(np.asarray(cols["y"], np.float64)),
            "affinity": pa.array(np.asarray(cols["affinity"], np.float64)),
            "scale": pa.array(np.asarray(cols["scale"], np.float64)),
            "prot_emb": fixed(cols["prot_emb"]),
            "lig_emb": fixed(cols["lig_emb"]),
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_predictions(path: str | Path) -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"cannot read {path}: {type(e).__name__}: {e}") from None
    missing = set(PRED_COLUMNS) - set(t.column_names)
    if missing:
        raise DataError(f"{path}: not an affinity prediction file (missing columns {sorted(missing)})")
    out = {c: t[c].to_numpy() for c in PRED_COLUMNS if not c.endswith("_emb")}
    for c in ("prot_emb", "lig_emb"):
        col = t[c].combine_chunks()
        out[c] = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, col.type.list_size)
    return out
