"""text2mol task parameters (torch-free pydantic), validated when an experiment is resolved."""

from __future__ import annotations

from typing import Literal

from ..base import TaskParams


class Text2MolParams(TaskParams):
    text_max_length: int = 256  # ChEBI-20 descriptions: ~95% under 256 word-pieces
    # contrastive: cross-entropy of the similarity matrix vs the identity, texts->molecules and back;
    # binary_contrastive: BCE of every (text, molecule) logit vs the identity, both ways (write-up sec. 4)
    loss: Literal["contrastive", "binary_contrastive"] = "contrastive"
    text_cache_batch_size: int = 64  # batch used once to embed all texts with a frozen text tower
