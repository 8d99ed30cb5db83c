"""Mamba (selective state space) encoder on character tokens (BELKA 5th place "mamba net").

Embedding -> Conv1d k=3 -> N pre-norm residual blocks [x + Mamba(LN(x))] -> LN -> masked mean pool ->
Linear to one logit per protein.

The Mamba mixer is `mamba_ssm.Mamba` (fused CUDA kernels; optional `gpu` extra, imported lazily) on a CUDA
machine that has it, else `mambapy`'s pure-torch MambaBlock (MIT; parallel scan in torch). Both have the
same parameters under the same names (in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj) and shapes, so
a checkpoint trained on one loads into the other. The choice is made when the model is built (`backend`:
auto | mamba_ssm | torch); it does not change the state dict.

Padding: the mixer is causal (its depthwise conv and scan only look backwards) and tokens are left-aligned,
so the PAD positions after a molecule never reach its real positions; the pool averages real positions
only. Batches are cut to their longest molecule first (exact, and the scan is linear in length).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from .params import MambaParams
from .transformer import CharConvEmbedding, masked_mean, trim

MIXER_PARAMS = ("in_proj", "conv1d", "x_proj", "dt_proj", "A_log", "D", "out_proj")


@functools.lru_cache(maxsize=1)
def _mamba_ssm() -> Any:
    try:
        from mamba_ssm import Mamba
    except Exception:  # not installed, or a build that does not match this torch/CUDA
        return None
    return Mamba


def torch_mixer(d_model: int, d_state: int, d_conv: int, expand: int) -> nn.Module:
    """mambapy's MambaBlock: the pure-torch path (CPU, or GPU without mamba_ssm)."""
    from mambapy.mamba import MambaBlock, MambaConfig

    cfg = MambaConfig(d_model=d_model, n_layers=1, d_state=d_state, expand_factor=expand, d_conv=d_conv, pscan=True)
    return MambaBlock(cfg)


def make_mixer(p: MambaParams) -> nn.Module:
    backend = p.backend
    if backend == "auto":
        backend = "mamba_ssm" if torch.cuda.is_available() and _mamba_ssm() is not None else "torch"
    if backend == "mamba_ssm":
        cls = _mamba_ssm()
        if cls is None:
            raise RuntimeError(
                "backend='mamba_ssm' needs the mamba-ssm package (pip install 'molremote[gpu]' on a "
                "CUDA machine with nvcc)"
            )
        return cls(d_model=p.d_model, d_state=p.d_state, d_conv=p.d_conv, expand=p.expand)
    return torch_mixer(p.d_model, p.d_state, p.d_conv, p.expand)


class ResidualBlock(nn.Module):
    def __init__(self, p: MambaParams):
        super().__init__()
        self.norm = nn.LayerNorm(p.d_model)
        self.mixer = make_mixer(p)
        self.drop = nn.Dropout(p.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.mixer(self.norm(x)))


class MambaEncoder(nn.Module):
    def __init__(self, p: MambaParams, vocab_size: int, max_length: int, n_outputs: int):
        super().__init__()
        if p.conv_kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd (same-length conv), got {p.conv_kernel}")
        self.embed = CharConvEmbedding(vocab_size, p.d_model, p.conv_kernel)
        self.blocks = nn.ModuleList(ResidualBlock(p) for _ in range(p.n_layers))
        self.ln = nn.LayerNorm(p.d_model)
        self.head = nn.Linear(p.d_model, n_outputs)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens, mask = trim(tokens)
        x = self.embed(tokens, mask)
        for blk in self.blocks:
            x = blk(x)
        return masked_mean(self.ln(x), mask)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(tokens))


def build(params: MambaParams, info: dict[str, Any]) -> nn.Module:
    return MambaEncoder(
        params, vocab_size=int(info["vocab_size"]), max_length=int(info["max_length"]), n_outputs=int(info["n_outputs"])
    )
