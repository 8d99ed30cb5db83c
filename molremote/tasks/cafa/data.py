"""Reading the CAFA files (torch-free): sequences with Biopython's FASTA parser, the tab-separated tables with
pandas, the ontology with obonet (ontology.py). Every bad input is a DataError naming the file, the line and
the value.

    train_sequences.fasta      >sp|P9WHI7|RECN_MYCT ... : the accession is the header's 2nd '|' field
    train_terms.tsv            EntryID  term  aspect    (aspect P|F|C, or BPO|MFO|CCO)
    go-basic.obo, IA.tsv       ontology; `term<TAB>ia` without header
    testsuperset.fasta         >A0A0C5B5G6 9606 : accession, then the taxon id
    train_taxonomy.tsv         EntryID  taxonomyID   (optional; read when present)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DataError
from .ontology import ASPECT_CODES, Ontology, propagate_pairs, read_obo

FILES = ("train_sequences.fasta", "train_terms.tsv", "go-basic.obo", "IA.tsv", "testsuperset.fasta")
AMINO = re.compile(r"^[A-Za-z]+\*?$")
SHOW = 5


def accession(record_id: str) -> str:
    """`sp|P9WHI7|RECN_MYCT` -> `P9WHI7`; a plain id is kept."""
    parts = record_id.split("|")
    return parts[1] if len(parts) >= 3 and parts[0] in ("sp", "tr") else record_id


@dataclass
class Fasta:
    ids: np.ndarray  # accessions (str)
    sequences: list[str]
    taxa: list[str]  # the second header word when it is a number (test superset), else ""


def read_fasta(path: Path) -> Fasta:
    try:
        from Bio import SeqIO
    except ImportError:  # pragma: no cover - the protein extra
        raise DataError("reading FASTA needs Biopython: pip install 'molremote[protein]'") from None
    ids, seqs, taxa = [], [], []
    seen: dict[str, int] = {}
    try:
        with open(path, encoding="utf-8") as f:
            first = f.read(1)
            if first != ">":
                raise DataError(f"{path}: not a FASTA file (the first character is {first!r}, expected '>')")
            f.seek(0)
            for n, r in enumerate(SeqIO.parse(f, "fasta"), start=1):
                acc = accession(r.id)
                s = str(r.seq)
                if not s or not AMINO.match(s):
                    bad = sorted({c for c in s if not c.isalpha()})[:SHOW]
                    raise DataError(
                        f"{path}: record {n} ({r.id}): "
                        + ("empty sequence" if not s else f"not a protein sequence (characters {bad})")
                    )
                if acc in seen:
                    raise DataError(f"{path}: record {n}: accession {acc} repeats record {seen[acc]}")
                seen[acc] = n
                words = r.description.split()
                ids.append(acc)
                seqs.append(s.rstrip("*").upper())
                taxa.append(words[1] if len(words) > 1 and words[1].isdigit() else "")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not ids:
        raise DataError(f"{path}: no FASTA records")
    return Fasta(np.asarray(ids, dtype=object).astype(str), seqs, taxa)


def read_terms(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(EntryID, term, aspect as BP/MF/CC) of train_terms.tsv."""
    import pandas as pd

    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{path}: cannot be read as a tab-separated table: {str(e).splitlines()[0]}") from None
    want = ["EntryID", "term", "aspect"]
    missing = [c for c in want if c not in df.columns]
    if missing:
        raise DataError(f"{path}: header {list(df.columns)[:5]} lacks column(s) {missing} (expected {want})")
    for c in want:
        empty = np.flatnonzero(df[c].to_numpy() == "")
        if len(empty):
            raise DataError(f"{path}: line {empty[0] + 2}: empty {c}")
    aspect = df["aspect"].map(ASPECT_CODES)
    bad = np.flatnonzero(aspect.isna().to_numpy())
    if len(bad):
        v = df["aspect"].iloc[bad[0]]
        raise DataError(f"{path}: line {bad[0] + 2}: aspect {v!r} is not one of P, F, C (or BPO, MFO, CCO)")
    terms = df["term"].to_numpy().astype(str)
    bad_t = np.flatnonzero(~df["term"].str.match(r"^GO:\d{7}$").to_numpy())
    if len(bad_t):
        raise DataError(f"{path}: line {bad_t[0] + 2}: term {str(terms[bad_t[0]])!r} is not a GO id (GO:nnnnnnn)")
    return df["EntryID"].to_numpy().astype(str), terms, aspect.to_numpy().astype(str)


def read_ia(path: Path, ont: Ontology) -> np.ndarray:
    """IA per ontology term (0 where IA.tsv has none)."""
    ia = np.zeros(len(ont))
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise DataError(f"{path}: line {n}: expected `term<TAB>ia`, got {line.strip()[:60]!r}")
            try:
                v = float(parts[1])
            except ValueError:
                raise DataError(f"{path}: line {n}: IA {parts[1]!r} of {parts[0]} is not a number") from None
            for t in ont.canonical(parts[0]):
                ia[ont.index[t]] = v
    return np.nan_to_num(ia, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass
class CafaData:
    ont: Ontology
    ia: np.ndarray  # per ontology term
    train: Fasta  # annotated training proteins only, in FASTA order
    test: Fasta
    truth_prot: np.ndarray  # propagated annotations: row in `train`, ontology term index
    truth_term: np.ndarray
    dropped_terms: int  # annotation rows whose term the ontology lacks (obsolete)


def read_taxonomy(path: Path) -> dict[str, str]:
    """train_taxonomy.tsv: {EntryID: taxonomy id}."""
    import pandas as pd

    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{path}: cannot be read as a tab-separated table: {str(e).splitlines()[0]}") from None
    if list(df.columns[:2]) != ["EntryID", "taxonomyID"]:
        raise DataError(f"{path}: header {list(df.columns)[:3]}, expected EntryID, taxonomyID")
    return dict(zip(df["EntryID"], df["taxonomyID"]))


def read_cafa(d: Path | dict[str, Path]) -> CafaData:
    """The CAFA files of folder `d`, or of {file name: path} (Kaggle's Train/ and Test/ layout); the optional
    train_taxonomy.tsv beside train_terms.tsv gives the training proteins' taxa."""
    path = {n: d[n] for n in FILES} if isinstance(d, dict) else {n: d / n for n in FILES}
    ont = read_obo(path["go-basic.obo"])
    ia = read_ia(path["IA.tsv"], ont)
    fasta = read_fasta(path["train_sequences.fasta"])
    test = read_fasta(path["testsuperset.fasta"])
    entry, term, _aspect = read_terms(path["train_terms.tsv"])
    row_of = {a: i for i, a in enumerate(fasta.ids.tolist())}
    rows = np.fromiter((row_of.get(a, -1) for a in entry.tolist()), dtype=np.int64, count=len(entry))
    unknown = np.flatnonzero(rows < 0)
    if len(unknown):
        few = sorted(set(entry[unknown].tolist()))[:SHOW]
        raise DataError(
            f"{path['train_terms.tsv']}: line {unknown[0] + 2}: {len(set(entry[unknown]))} EntryID(s) without a "
            f"sequence in {path['train_sequences.fasta']}: {', '.join(few)}"
        )
    pos, tidx = ont.ids(term.tolist())
    prot, tt, _ = propagate_pairs(ont, rows[pos], tidx)
    annotated = np.unique(prot)
    keep = np.zeros(len(fasta.ids), dtype=bool)
    keep[annotated] = True
    new_row = np.cumsum(keep) - 1
    taxa = fasta.taxa
    tax_file = path["train_terms.tsv"].parent / "train_taxonomy.tsv"
    if tax_file.is_file():
        tax = read_taxonomy(tax_file)
        taxa = [tax.get(a, t) for a, t in zip(fasta.ids.tolist(), fasta.taxa)]
    train = Fasta(
        fasta.ids[keep], [s for s, k in zip(fasta.sequences, keep) if k], [t for t, k in zip(taxa, keep) if k]
    )
    return CafaData(ont, ia, train, test, new_row[prot], tt, int(len(term) - len(np.unique(pos))))
