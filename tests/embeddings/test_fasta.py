"""FASTA reading: UniProt headers, wrapped sequences, stop symbols, lower case; errors name file and record."""

from __future__ import annotations

import pytest

from molremote.embeddings.fasta import read_fasta
from molremote.errors import DataError


def test_records_ids_descriptions_and_sequences(tmp_path):
    p = tmp_path / "x.fasta"
    p.write_text(">sp|P9WHI7|RECN_MYCT DNA repair protein RecN OS=Mycobacterium\nMKVL\naagi*\n>second\nMST\n")
    recs = read_fasta(p)
    assert [(r.id, r.sequence) for r in recs] == [("sp|P9WHI7|RECN_MYCT", "MKVLAAGI"), ("second", "MST")]
    assert recs[0].description.endswith("OS=Mycobacterium")


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "no records"),
        ("MKV\n", "not FASTA"),
        (">a\nMKV\n>b\nMK1V\n", "record 2 ('b'): '1' is not a residue letter"),
        (">a\n\n>b\nMKV\n", "record 1 ('a'): empty sequence"),
    ],
)
def test_bad_files_are_named(tmp_path, text, words):
    p = tmp_path / "bad.fasta"
    p.write_text(text)
    with pytest.raises(DataError, match="bad.fasta") as e:
        read_fasta(p)
    assert words in str(e.value)


def test_binary_file(tmp_path):
    p = tmp_path / "bin.fasta"
    p.write_bytes(b">a\n\xff\xfe\x00\n")
    with pytest.raises(DataError, match="bin.fasta: not text"):
        read_fasta(p)
