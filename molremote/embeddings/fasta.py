"""Reading protein FASTA files (Biopython's parser): ids and sequences, checked, with errors that name the
file and the record. torch-free; Biopython is imported when a file is read (the `protein` extra)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError


@dataclass(frozen=True)
class FastaRecord:
    id: str  # the header's first word (`sp|P9WHI7|RECN_MYCT` for UniProt headers)
    description: str  # the whole header line after '>'
    sequence: str  # upper-case residue letters, a final '*' (stop) removed


def read_fasta(path: Path | str) -> list[FastaRecord]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"FASTA file {path}: not found")
    try:
        from Bio import SeqIO
    except ImportError:  # pragma: no cover - the protein extra is installed by scripts/setup.sh
        raise DataError("reading FASTA needs Biopython: pip install 'molremote[protein]'") from None
    records: list[FastaRecord] = []
    try:
        with open(path, encoding="utf-8") as f:
            for r in SeqIO.parse(f, "fasta"):
                seq = str(r.seq).upper().removesuffix("*")
                where = f"FASTA file {path}, record {len(records) + 1} ({r.id!r})"
                if not seq:
                    raise DataError(f"{where}: empty sequence")
                if not (seq.isascii() and seq.isalpha()):
                    bad = next(c for c in seq if not (c.isascii() and c.isalpha()))
                    raise DataError(f"{where}: {bad!r} is not a residue letter")
                records.append(FastaRecord(r.id, r.description, seq))
    except UnicodeDecodeError as e:
        raise DataError(f"FASTA file {path}: not text ({e.reason} at byte {e.start})") from None
    except ValueError:  # Biopython: text before the first '>' header
        raise DataError(
            f"FASTA file {path}: not FASTA (text before the first '>' header line; each record is a '>id' line "
            f"followed by its sequence)"
        ) from None
    if not records:
        raise DataError(
            f"FASTA file {path}: no records (a FASTA file has '>id' header lines, each followed by a sequence)"
        )
    return records
