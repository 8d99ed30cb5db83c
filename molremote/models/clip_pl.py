"""Affinity CLIP (ORNL "affinity CLIP" reference): protein tower + ligand tower + projection heads in one
embedding space, symmetric InfoNCE with a learnable temperature, optional affinity regression head.

Protein tower: "cached" = frozen pretrained per-sequence embeddings (ESM-2 through the core embedding
cache; the task computes them once and passes them in the batch) followed by a trainable MLP; or a
trainable encoder on amino-acid tokens, the BELKA cnn1d / transformer with its head sized `tower_dim`.
Ligand tower: BELKA's cnn1d / transformer on SMILES characters, head sized `tower_dim`.
Each tower runs once per distinct protein / ligand of a batch (a batch of 256 KIBA pairs holds ~80 distinct
proteins): the batch carries the distinct tokens and the index of each pair's row.
Projection heads: Linear -> GELU -> Dropout -> Linear -> LayerNorm, then L2 normalisation.
Regression head (optional): MLP on [p, l, p * l] -> standardised affinity.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .cnn1d import Cnn1d
from .params import ClipPlParams, Cnn1dParams, TransformerParams
from .transformer import Transformer

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp: temperature never below 0.01


def _token_tower(kind: str, extra: dict, vocab: int, max_length: int, out: int) -> nn.Module:
    if kind == "cnn1d":
        return Cnn1d(Cnn1dParams(**extra), vocab_size=vocab, max_length=max_length, n_outputs=out)
    return Transformer(TransformerParams(**extra), vocab_size=vocab, max_length=max_length, n_outputs=out)


def _proj(d_in: int, p: ClipPlParams) -> nn.Module:
    return nn.Sequential(
        nn.Linear(d_in, p.proj_hidden),
        nn.GELU(),
        nn.Dropout(p.dropout),
        nn.Linear(p.proj_hidden, p.embed_dim),
        nn.LayerNorm(p.embed_dim),
    )


class ClipPl(nn.Module):
    def __init__(self, p: ClipPlParams, info: dict[str, Any]):
        super().__init__()
        self.params = p
        if p.protein == "cached":
            self.protein_tower: nn.Module = nn.Identity()
            prot_dim = int(info["protein_dim"])
        else:
            self.protein_tower = _token_tower(
                p.protein, p.protein_params, int(info["protein_vocab"]), int(info["protein_max_length"]), p.tower_dim
            )
            prot_dim = p.tower_dim
        self.ligand_tower = _token_tower(
            p.ligand, p.ligand_params, int(info["smiles_vocab"]), int(info["smiles_max_length"]), p.tower_dim
        )
        self.protein_proj = _proj(prot_dim, p)
        self.ligand_proj = _proj(p.tower_dim, p)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / p.temperature)), requires_grad=p.learn_temperature)
        self.head: nn.Module | None = None
        if p.regression != "none":
            self.head = nn.Sequential(
                nn.Linear(3 * p.embed_dim, p.regression_hidden),
                nn.GELU(),
                nn.Dropout(p.dropout),
                nn.Linear(p.regression_hidden, 1),
            )

    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    def encode_proteins(self, x: torch.Tensor) -> torch.Tensor:
        """Distinct proteins (tokens, or cached embeddings) -> L2-normalised (n, embed_dim)."""
        return F.normalize(self.protein_proj(self.protein_tower(x)), dim=-1)

    def encode_ligands(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.ligand_proj(self.ligand_tower(tokens)), dim=-1)

    def regress(self, p: torch.Tensor, lg: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            raise RuntimeError("this clip_pl has no regression head (model.regression='none')")
        if self.params.regression == "detached":
            p, lg = p.detach(), lg.detach()
        return self.head(torch.cat([p, lg, p * lg], dim=-1)).squeeze(-1)

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """batch: prot_x (distinct proteins), prot_inv (row of each pair), lig_x, lig_inv ->
        (protein emb, ligand emb, standardised affinity or None), one row per pair."""
        p = self.encode_proteins(batch["prot_x"])[batch["prot_inv"]]
        lg = self.encode_ligands(batch["lig_x"])[batch["lig_inv"]]
        return p, lg, self.regress(p, lg) if self.head is not None else None


def info_nce(
    p: torch.Tensor, lg: torch.Tensor, scale: torch.Tensor, prot: torch.Tensor | None, lig: torch.Tensor | None
) -> torch.Tensor:
    """Symmetric InfoNCE (mean of protein->ligand and ligand->protein cross-entropy) on scale * cosine. With
    `prot`/`lig` ids given, off-diagonal pairs sharing a protein or a ligand are masked out (false negatives)."""
    logits = scale * p @ lg.T
    n = logits.shape[0]
    if prot is not None and lig is not None:
        mask = (prot[:, None] == prot[None, :]) | (lig[:, None] == lig[None, :])
        mask.fill_diagonal_(False)
        logits = logits.masked_fill(mask, float("-inf"))
    target = torch.arange(n, device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def build(params: ClipPlParams, info: dict[str, Any]) -> ClipPl:
    """info: protein_vocab, protein_max_length (token tower) or protein_dim (cached), smiles_vocab,
    smiles_max_length."""
    return ClipPl(params, info)
