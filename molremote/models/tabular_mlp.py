"""The MoA 1st-place weight-normalised 3-block MLP (their "simple NN" / 3-stage NN block):

BN -> Dropout(d1) -> weight-norm Linear(in, h) -> LeakyReLU -> BN -> Dropout(d2) -> weight-norm Linear(h, h)
-> LeakyReLU -> BN -> Dropout(d3) -> weight-norm Linear(h, out). One logit per target.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from .params import TabularMlpParams


class TabularMlp(nn.Module):
    def __init__(self, p: TabularMlpParams, n_features: int, n_outputs: int):
        super().__init__()
        h = p.hidden
        self.net = nn.Sequential(
            nn.BatchNorm1d(n_features),
            nn.Dropout(p.dropout[0]),
            weight_norm(nn.Linear(n_features, h)),
            nn.LeakyReLU(p.negative_slope),
            nn.BatchNorm1d(h),
            nn.Dropout(p.dropout[1]),
            weight_norm(nn.Linear(h, h)),
            nn.LeakyReLU(p.negative_slope),
            nn.BatchNorm1d(h),
            nn.Dropout(p.dropout[2]),
            weight_norm(nn.Linear(h, n_outputs)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build(params: TabularMlpParams, info: dict[str, Any]) -> nn.Module:
    return TabularMlp(params, n_features=int(info["n_features"]), n_outputs=int(info["n_outputs"]))
