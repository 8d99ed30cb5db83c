"""Heads on fixed protein embeddings (the CAFA write-up's two classifiers). Both return one logit per label,
the multi-task head's namespaces concatenated in the task's label order (`info["aspect_sizes"]`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .params import ProteinMlpParams, ProteinMultitaskParams


class ProteinMlp(nn.Module):
    def __init__(self, p: ProteinMlpParams, n_features: int, n_outputs: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_features, p.hidden), nn.ReLU(), nn.Dropout(p.dropout), nn.Linear(p.hidden, n_outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ProteinMultitask(nn.Module):
    def __init__(self, p: ProteinMultitaskParams, n_features: int, aspect_sizes: list[int]):
        super().__init__()
        self.shared = nn.Sequential(nn.Linear(n_features, p.shared), nn.ReLU(), nn.Dropout(p.dropout))
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Linear(p.shared, p.aspect_hidden),
                nn.ReLU(),
                nn.Dropout(p.head_dropout),
                nn.Linear(p.aspect_hidden, k),
            )
            for k in aspect_sizes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.shared(x)
        return torch.cat([head(h) for head in self.heads], dim=1)


def build_mlp(params: ProteinMlpParams, info: dict[str, Any]) -> nn.Module:
    return ProteinMlp(params, int(info["n_features"]), int(info["n_outputs"]))


def build_multitask(params: ProteinMultitaskParams, info: dict[str, Any]) -> nn.Module:
    sizes = [int(k) for k in info["aspect_sizes"]]
    if sum(sizes) != int(info["n_outputs"]):
        raise ValueError(f"aspect sizes {sizes} do not add up to {info['n_outputs']} outputs")
    return ProteinMultitask(params, int(info["n_features"]), sizes)
