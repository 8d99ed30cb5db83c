"""BELKA character tokenizer: roundtrip, errors naming row and character, and the O-vs-0 fact on the demo data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from molremote.tasks.base import DEMO_ROOT
from molremote.tasks.belka.tokens import PAD, SYMBOLS, VOCAB_SIZE, TokenizeError, decode, encode

DEMO = DEMO_ROOT / "belka"


@pytest.fixture(scope="module")
def demo_smiles() -> pa.Array:
    train = pq.read_table(DEMO / "train.parquet", columns=["molecule_smiles"]).column(0)
    test = pq.read_table(DEMO / "test.parquet", columns=["molecule_smiles"]).column(0)
    return pa.concat_arrays([train.combine_chunks(), test.combine_chunks()]).unique()


def test_roundtrip_on_demo_molecules(demo_smiles):
    tokens = encode(demo_smiles, 142)
    assert tokens.shape == (len(demo_smiles), 142) and tokens.dtype == np.uint8
    assert decode(tokens) == demo_smiles.to_pylist()
    lengths = (tokens != PAD).sum(axis=1)
    assert lengths.tolist() == [len(s) for s in demo_smiles.to_pylist()]
    assert tokens.max() < VOCAB_SIZE


def test_python_list_and_arrow_give_the_same_matrix():
    smiles = ["C(=O)N[Dy]", "Clc1ccc(Br)cc1", "C#CC[C@@H](N)C(=O)O"]
    a = encode(smiles, 24)
    b = encode(pa.array(smiles, type=pa.large_string()), 24)
    np.testing.assert_array_equal(a, b)
    # each character maps to its 1-based position in the symbol table, the rest is padding
    assert a[0, :10].tolist() == [SYMBOLS.index(c) + 1 for c in "C(=O)N[Dy]"]
    assert (a[0, 10:] == PAD).all()


def test_sliced_arrow_array_uses_its_offset():
    arr = pa.array(["CC", "OCO", "NCCN"])
    np.testing.assert_array_equal(encode(arr.slice(1), 8), encode(["OCO", "NCCN"], 8))


def test_unknown_character_names_row_and_char():
    with pytest.raises(TokenizeError) as e:
        encode(["CCO", "CCP(=O)(O)O", "CC"], 20, row_offset=100)
    assert e.value.row == 101 and e.value.char == "P"
    assert "row 101" in str(e.value) and "'P'" in str(e.value) and "CCP(=O)(O)O" in str(e.value)


def test_too_long_names_row():
    with pytest.raises(TokenizeError) as e:
        encode(["CC", "C" * 30], 20)
    assert e.value.row == 1 and "30 > max_length 20" in str(e.value)


def test_skip_policy_drops_unknown_characters_to_pad():
    t = encode(["CPC"], 5, on_unknown="skip")
    assert decode(t) == ["CC"] and t[0, 1] == PAD


def test_missing_smiles_is_an_error():
    with pytest.raises(TokenizeError, match="row 1: missing SMILES"):
        encode(pa.array(["CC", None]), 8)


def test_demo_smiles_use_letter_O_and_never_digit_0_or_percent(demo_smiles):
    """Why the table has the letter O where the write-up's dictionary lists the digit 0."""
    text = "".join(demo_smiles.to_pylist())
    assert "O" in text
    assert "0" not in text and "%" not in text
    assert "O" in SYMBOLS and "0" not in SYMBOLS
