"""Task parameters (torch-free pydantic models), validated when an experiment is resolved."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BelkaParams(_Params):
    max_length: int = 142  # longest BELKA SMILES is 142 characters (160 with BOS/EOS and slack in the write-up)
    proteins: list[str] = ["BRD4", "HSA", "sEH"]
    unknown_chars: Literal["error", "skip"] = "error"


class Text2MolParams(_Params):
    text_max_length: int = 256  # ChEBI-20 descriptions: ~95% under 256 word-pieces
    # contrastive: cross-entropy of the similarity matrix vs the identity, texts->molecules and back;
    # binary_contrastive: BCE of every (text, molecule) logit vs the identity, both ways (write-up sec. 4)
    loss: Literal["contrastive", "binary_contrastive"] = "contrastive"
    text_cache_batch_size: int = 64  # batch used once to embed all texts with a frozen text tower
