"""Transformer encoder on character tokens (BELKA 5th place "transformer net").

Embedding -> Conv1d k=3 (learned bigram/trigram features, the write-up's "conv embedding") -> + learned
positions -> N pre-LN blocks [x + MHA(LN(x)); x + MLP(LN(x))] -> LN -> masked mean pool over real tokens ->
Linear to one logit per protein.

Padding: tokens are left-aligned with PAD (0) after them. The PAD embedding is zero and the conv pads with
zeros, so a real position sees the same neighbours whatever the amount of padding; attention masks padded
keys; the pool averages real positions only. Batches are cut to their longest molecule before anything
runs (exact, by the above, and ~2x less work on BELKA's ~70-character average).

Attention: flash-attn's variable-length kernel on CUDA in fp16/bf16 when the package is installed (the
padded tokens are removed, no work is spent on them), else `F.scaled_dot_product_attention` with a key
padding mask (which itself picks fused kernels on GPU). Both use the same weights (qkv, out), so a
checkpoint moves between machines with and without flash-attn.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .params import TransformerParams


@functools.lru_cache(maxsize=1)
def _flash_varlen() -> Any:
    """flash_attn_varlen_qkvpacked_func, or None when flash-attn is not installed (imported lazily: it is
    a CUDA-only build in the optional `gpu` extra)."""
    try:
        from flash_attn import flash_attn_varlen_qkvpacked_func
    except Exception:  # ImportError, or a build that does not match this torch/CUDA
        return None
    return flash_attn_varlen_qkvpacked_func


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float, attention: str):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads, self.d_head, self.dropout, self.attention = n_heads, d_model // n_heads, dropout, attention
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def use_flash(self, x: torch.Tensor) -> bool:
        if self.attention == "sdpa":
            return False
        ok = x.is_cuda and x.dtype in (torch.float16, torch.bfloat16) and _flash_varlen() is not None
        if self.attention == "flash" and not ok:
            raise RuntimeError("attention='flash' needs flash-attn installed, a CUDA device and fp16/bf16 (AMP)")
        return ok

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.n_heads, self.d_head)
        p = self.dropout if self.training else 0.0
        if self.use_flash(x):
            # unpad: real tokens of all molecules back to back, with cumulative sequence offsets
            lengths = mask.sum(1, dtype=torch.int32)
            cu = F.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))
            keep = mask.reshape(-1).nonzero(as_tuple=True)[0]
            o = _flash_varlen()(qkv.reshape(b * n, 3, self.n_heads, self.d_head)[keep], cu, int(lengths.max()), p)
            y = x.new_zeros(b * n, d)
            y[keep] = o.reshape(-1, d)
            return self.out(y.view(b, n, d))
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, L, Dh)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :], dropout_p=p)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, p: TransformerParams):
        super().__init__()
        self.ln1 = nn.LayerNorm(p.d_model)
        self.attn = SelfAttention(p.d_model, p.n_heads, p.dropout, p.attention)
        self.ln2 = nn.LayerNorm(p.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(p.d_model, p.ff_mult * p.d_model),
            nn.GELU(),
            nn.Dropout(p.dropout),
            nn.Linear(p.ff_mult * p.d_model, p.d_model),
        )
        self.drop = nn.Dropout(p.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), mask))
        return x + self.drop(self.mlp(self.ln2(x)))


class CharConvEmbedding(nn.Module):
    """Token embedding followed by a same-length Conv1d (k=3): each position mixes its neighbours."""

    def __init__(self, vocab_size: int, d_model: int, kernel_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=0)
        self.conv = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens).transpose(1, 2)
        x = self.conv(x).transpose(1, 2)
        return x * mask[..., None]  # padded positions stay exactly zero


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask[..., None].to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


def trim(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a left-aligned PAD-filled batch to its longest sequence; (tokens, mask). At least one position
    stays unmasked per row, so an empty sequence attends to something (its output is its PAD embedding)."""
    mask = tokens != 0
    longest = int(mask.sum(1).max()) if tokens.numel() else 0
    tokens, mask = tokens[:, : max(longest, 1)], mask[:, : max(longest, 1)].clone()
    mask[:, 0] = True
    return tokens, mask


class Transformer(nn.Module):
    def __init__(self, p: TransformerParams, vocab_size: int, max_length: int, n_outputs: int):
        super().__init__()
        if p.conv_kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd (same-length conv), got {p.conv_kernel}")
        self.embed = CharConvEmbedding(vocab_size, p.d_model, p.conv_kernel)
        self.pos = nn.Parameter(torch.zeros(max_length, p.d_model))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(p) for _ in range(p.n_layers))
        self.ln = nn.LayerNorm(p.d_model)
        self.head = nn.Linear(p.d_model, n_outputs)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens, mask = trim(tokens)
        x = self.embed(tokens, mask) + self.pos[: tokens.shape[1]] * mask[..., None]
        for blk in self.blocks:
            x = blk(x, mask)
        return masked_mean(self.ln(x), mask)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(tokens))


def build(params: TransformerParams, info: dict[str, Any]) -> nn.Module:
    return Transformer(
        params, vocab_size=int(info["vocab_size"]), max_length=int(info["max_length"]), n_outputs=int(info["n_outputs"])
    )
