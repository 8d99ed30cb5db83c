"""BELKA task parameters (torch-free pydantic), validated when an experiment is resolved."""

from __future__ import annotations

from typing import Literal

from ..base import TaskParams


class BelkaParams(TaskParams):
    max_length: int = 142  # longest BELKA SMILES is 142 characters (160 with BOS/EOS and slack in the write-up)
    proteins: list[str] = ["BRD4", "HSA", "sEH"]
    unknown_chars: Literal["error", "skip"] = "error"
