"""affinity task parameters (torch-free pydantic), validated when an experiment is resolved."""

from __future__ import annotations

from typing import Literal

from ..base import TaskParams


class AffinityParams(TaskParams):
    # --- files, relative to data.root (the shipped demo when unset); parquet or CSV
    train_file: str = "train.parquet"  # the training pool (folds are cut from it)
    test_file: str | None = "test.parquet"  # held-out pairs scored after training; None or absent: none
    # --- columns: jglaser/binding_affinity's names by default
    seq_column: str = "seq"
    smiles_column: str = "smiles_can"
    affinity_column: str = "neg_log10_affinity_M"
    # unit of affinity_column: "pK" (-log10 molar, used as is), "uM" / "nM" (converted to pK), or "score"
    # (any scale where higher = stronger binding, used as is: KIBA scores)
    affinity_unit: Literal["pK", "uM", "nM", "score"] = "pK"
    # --- bad rows: an unparsable SMILES (RDKit) or a residue outside the 20 standard amino acids + X
    invalid: Literal["drop", "refuse"] = "drop"  # drop them (counted, reported) or refuse the file
    # --- tokens for the trainable towers (the cached ESM tower does not read protein tokens)
    protein_max_length: int = 1000  # residues kept (head); KIBA/BindingDB kinases: median ~600
    smiles_max_length: int = 160  # characters kept; drug-like SMILES: < 100 for ~95%
