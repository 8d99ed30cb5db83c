"""CAFA task parameters (torch-free pydantic): label space, protein features, loss and thresholds."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from ..base import TaskParams


class CafaParams(TaskParams):
    # --- label space: the K most frequent (propagated) terms of each namespace among the training proteins.
    # The write-up trained on every term (26k); most are too rare to learn (51.6% occur in < 10 proteins), and
    # the heads' size is K: 1500/800/500 keep the terms that carry nearly all of the IA-weighted F-max.
    top_k_bp: int = 1500
    top_k_mf: int = 800
    top_k_cc: int = 500
    # --- protein features: the embedding cache (molremote.embeddings). "kmer:3" is torch-free and offline;
    # the write-up's models use "facebook/esm2_t30_150M_UR50D" (640) or "facebook/esm2_t33_650M_UR50D" (1280).
    embedding: str = "kmer:3"
    embedding_policy: Literal["headtail", "window"] = "headtail"  # the write-up's baseline: head + tail
    standardize: bool = True  # features scaled by the fold's training mean/std (fitted in prepare_fold)
    # --- loss: "bce", "focal" (write-up: alpha 0.25, gamma 2) or "weighted_bce" (pos_weight = neg / (pos + 1),
    # normalised to min 1 and capped: the write-up's class weights, capped at 10x)
    loss: Literal["bce", "focal", "weighted_bce"] = "bce"
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    pos_weight_cap: float = 10.0
    # --- per-term thresholds searched on the validation predictions (write-up: 0.10 .. 0.85 step 0.05, best
    # F1 per term); saved as predictions/thresholds.json and applied to the test predictions / submission as a
    # per-term monotone rescaling that maps each term's threshold to 0.5
    per_term_thresholds: bool = False
    # --- submission
    max_terms: int = 1500  # the competition's limit per protein

    @field_validator("top_k_bp", "top_k_mf", "top_k_cc", "max_terms")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v
