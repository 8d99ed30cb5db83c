"""DeepInsight CNN (the MoA 1st place's EfficientNet-B3 / ResNeSt models): tabular rows turned into images on the
fly by the task's feature -> pixel map (MoA: tasks/moa/deepinsight.py, fitted per fold), then a CNN.

Images: channel 0/1/2 = mean/min/max of the features that share a pixel (empty pixels 0), built with
`scatter_reduce` on the batch, so no image is stored. Swap noise (training only, before the mapping, as the
winners): each row with probability `swap_prob` takes `swap_portion` of its features (the leading `swap_skip`
code columns excepted) from another row of the batch (the winners drew the donor from the whole training set);
it draws from torch's RNG, which the checkpoints hold, so resume stays exact.

Backbones: "small" (default, pure torch: conv3x3-BN-ReLU-maxpool blocks, global average pool) or, as an
optional extra imported only when asked for, "efficientnet_b3" (`geffnet`'s tf_efficientnet_b3_ns, the winners')
and "resnest50_fast_2s2x40d" (`resnest`, the winners'). Install those with `pip install --no-deps geffnet
resnest` (geffnet declares torchvision, whose index build here is CUDA-only; neither imports it). timm does not
import on this CPU-torch install (it needs torchvision). The backbone's classifier is replaced by the winners'
head: Linear(features, 512) -> ELU -> Dropout -> Linear(512, targets).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .params import DeepInsightParams

EXTRA = "pip install --no-deps geffnet==1.0.2 resnest==0.0.5"


def _small(channels: tuple[int, ...], pixels: int) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = []
    prev, side = 3, pixels
    for c in channels:
        layers += [nn.Conv2d(prev, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        if side >= 2:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        prev = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), prev


def _backbone(p: DeepInsightParams, pixels: int) -> tuple[nn.Module, int]:
    if p.backbone == "small":
        return _small(p.channels, pixels)
    try:
        if p.backbone == "efficientnet_b3":
            import geffnet

            net = geffnet.create_model("tf_efficientnet_b3_ns", pretrained=p.pretrained)
            n = net.classifier.in_features
            net.classifier = nn.Identity()
        else:
            from resnest.torch import resnest50_fast_2s2x40d

            net = resnest50_fast_2s2x40d(pretrained=p.pretrained)
            n = net.fc.in_features
            net.fc = nn.Identity()
    except ImportError as e:
        raise ValueError(f"backbone '{p.backbone}' needs an optional package ({e.name}): {EXTRA}") from None
    return net, n


class DeepInsightCnn(nn.Module):
    def __init__(self, p: DeepInsightParams, n_features: int, n_outputs: int, pixels: int, pixel_index: list[int]):
        super().__init__()
        if len(pixel_index) != n_features:
            raise ValueError(f"the pixel map covers {len(pixel_index)} features, the data has {n_features}")
        self.p, self.pixels = p, pixels
        self.pixel_index: torch.Tensor
        self.register_buffer("pixel_index", torch.tensor(pixel_index, dtype=torch.long), persistent=False)
        self.backbone, n = _backbone(p, pixels)
        self.head = nn.Sequential(
            nn.Linear(n, p.fc_hidden), nn.ELU(), nn.Dropout(p.dropout), nn.Linear(p.fc_hidden, n_outputs)
        )

    def swap_noise(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p
        b, f = x.shape
        k = int((f - p.swap_skip) * p.swap_portion)
        if not (self.training and p.swap_prob > 0 and k > 0 and b > 1):
            return x
        rows = torch.rand(b, device=x.device) < p.swap_prob
        donor = torch.randint(0, b, (b,), device=x.device)
        cols = torch.rand(b, f - p.swap_skip, device=x.device).argsort(dim=1)[:, :k] + p.swap_skip
        mask = torch.zeros(b, f, dtype=torch.bool, device=x.device).scatter_(1, cols, True) & rows[:, None]
        return torch.where(mask, x[donor], x)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F) -> (B, 3, S, S): mean, min and max of the features mapped to each pixel; empty pixels 0."""
        b, s = x.shape[0], self.pixels
        idx = self.pixel_index.expand(b, -1)
        chans = [
            torch.zeros(b, s * s, dtype=x.dtype, device=x.device).scatter_reduce(1, idx, x, red, include_self=False)
            for red in ("mean", "amin", "amax")
        ]
        return torch.stack(chans, 1).view(b, 3, s, s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(self.images(self.swap_noise(x))))


def build(params: DeepInsightParams, info: dict[str, Any]) -> nn.Module:
    if "pixel_index" not in info:
        raise ValueError("the deepinsight model needs the task's feature -> pixel map (MoA: task.deepinsight_pixels)")
    return DeepInsightCnn(
        params,
        n_features=int(info["n_features"]),
        n_outputs=int(info["n_outputs"]),
        pixels=int(info["pixels"]),
        pixel_index=list(info["pixel_index"]),
    )
