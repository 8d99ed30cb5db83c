"""1D CNN on character tokens (BELKA public starter / 5th-place cnn1d).

Embedding -> [Conv1d k=3 ('valid', no padding, as the Keras starter) -> BatchNorm -> ReLU] x 3 (32/64/96
channels) -> global max pool over positions -> [Linear -> BatchNorm -> ReLU -> Dropout] x 3 (1024/1024/512)
-> one logit per output. The write-up gives the BatchNorm settings (eps 5e-3, momentum 0.2, "performance is
sensitive to batch normalisation") but not where the layers sit; here every conv and hidden layer has one.
Convs and hidden Linears carry no bias: the BatchNorm shift that follows makes it redundant.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .params import Cnn1dParams


class Cnn1d(nn.Module):
    def __init__(self, p: Cnn1dParams, vocab_size: int, max_length: int, n_outputs: int):
        super().__init__()
        if not p.channels or not p.hidden:
            raise ValueError("cnn1d needs at least one conv channel count and one hidden width")
        shrink = len(p.channels) * (p.kernel_size - 1)
        if max_length - shrink < 1:
            raise ValueError(f"max_length {max_length} too short for {len(p.channels)} convs of kernel {p.kernel_size}")
        self.embed = nn.Embedding(vocab_size, p.embed_dim, padding_idx=0)
        convs: list[nn.Module] = []
        c_in = p.embed_dim
        for c in p.channels:
            convs += [
                nn.Conv1d(c_in, c, p.kernel_size, bias=False),
                nn.BatchNorm1d(c, eps=p.bn_eps, momentum=p.bn_momentum),
                nn.ReLU(inplace=True),
            ]
            c_in = c
        self.convs = nn.Sequential(*convs)
        head: list[nn.Module] = []
        for h in p.hidden:
            head += [
                nn.Linear(c_in, h, bias=False),
                nn.BatchNorm1d(h, eps=p.bn_eps, momentum=p.bn_momentum),
                nn.ReLU(inplace=True),
                nn.Dropout(p.dropout),
            ]
            c_in = h
        head.append(nn.Linear(c_in, n_outputs))
        self.head = nn.Sequential(*head)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens).transpose(1, 2)  # (B, L) -> (B, E, L)
        x = self.convs(x).amax(dim=2)  # global max pool
        return self.head(x)


def build(params: Cnn1dParams, info: dict[str, Any]) -> nn.Module:
    return Cnn1d(
        params, vocab_size=int(info["vocab_size"]), max_length=int(info["max_length"]), n_outputs=int(info["n_outputs"])
    )
