"""The MoA 1st place "2-heads ResNet" (their Keras port of Demetry Pascal's R notebook "2heads looper super puper
plate"): a residual MLP whose blocks see the concatenated outputs of earlier blocks, with two heads: one for the
non-scored targets (pre-training), one for the scored targets.

Blocks (Keras `Dense` = Linear + activation; BN as Keras's, momentum 0.99 / eps 1e-3):
    out1 = [BN, Dropout d0, Dense 512 elu, BN, Dense 256 elu](x1)
    a1   = [BN, Dropout d1, Dense 512 relu](out1 | x2)
    a2   = [BN, Dense 512 elu, BN, Dense 256 relu](out1 | x2 | a1)
    a3   = [BN, Dense 256 elu](a1 | a2)
    a3_  = [BN, Dense 256 relu](a1 | a2 | a3)
    a4   = [BN, Dense 256 selu ("last_frozen"), BN, Dense n_scored selu](out1 | a2 | a3 | a3_)
    head = [BN, Dense n_targets](a4)   one for the non-scored targets, one for the scored ones
The winners' two inputs were (x1) all features + gene/cell means + PCA, (x2) 447 t-test-selected features;
here both are the task's features (one matrix).

Training phases, a pure function of the epoch (`set_epoch`, called by the trainer at each epoch start, so a
resumed run is in the same phase): (1) `pretrain_epochs` on the non-scored head (`aux_phase`: the task's loss
then uses the non-scored targets), (2) `scored_epochs` on the scored head, all trainable, (3) `frozen_epochs`
with only a4 and the scored head trainable at lr x frozen_lr_scale, (4) the rest all trainable at
lr x unfrozen_lr_scale. The winners ran (3) and (4) as early-stopped loops fitted on the fold's validation rows
(a leak); here every phase trains on the training rows and the trainer keeps the best epoch by validation score.
Frozen parameters get no gradient, so Adam leaves them (and their moments) untouched.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .params import TwoHeadsParams


def _bn(n: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(n, momentum=0.01, eps=1e-3)  # Keras BatchNormalization defaults


def _dense(n_in: int, n_out: int, act: nn.Module) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out), act]


class TwoHeadsResNet(nn.Module):
    def __init__(self, p: TwoHeadsParams, n_features: int, n_outputs: int, n_aux_outputs: int):
        super().__init__()
        self.p, self.n_aux_outputs = p, n_aux_outputs
        h, w, f = p.hidden, p.narrow, n_features
        self.out1 = nn.Sequential(
            _bn(f), nn.Dropout(p.dropout[0]), *_dense(f, h, nn.ELU()), _bn(h), *_dense(h, w, nn.ELU())
        )
        self.a1 = nn.Sequential(_bn(w + f), nn.Dropout(p.dropout[1]), *_dense(w + f, h, nn.ReLU()))
        self.a2 = nn.Sequential(_bn(w + f + h), *_dense(w + f + h, h, nn.ELU()), _bn(h), *_dense(h, w, nn.ReLU()))
        self.a3 = nn.Sequential(_bn(h + w), *_dense(h + w, w, nn.ELU()))
        self.a3_ = nn.Sequential(_bn(h + 2 * w), *_dense(h + 2 * w, w, nn.ReLU()))
        self.a4 = nn.Sequential(_bn(4 * w), *_dense(4 * w, w, nn.SELU()), _bn(w), *_dense(w, n_outputs, nn.SELU()))
        for m in self.a4:
            if isinstance(m, nn.Linear):  # the winners' lecun_normal for the selu layers
                nn.init.normal_(m.weight, std=(1.0 / m.in_features) ** 0.5)
                nn.init.zeros_(m.bias)
        self.head = nn.Sequential(_bn(n_outputs), nn.Linear(n_outputs, n_outputs))
        self.aux_head = nn.Sequential(_bn(n_outputs), nn.Linear(n_outputs, max(1, n_aux_outputs)))
        self.aux_phase = False

    def body(self, x: torch.Tensor) -> torch.Tensor:
        o1 = self.out1(x)
        a1 = self.a1(torch.cat([o1, x], 1))
        a2 = self.a2(torch.cat([o1, x, a1], 1))
        a3 = self.a3(torch.cat([a1, a2], 1))
        a3_ = self.a3_(torch.cat([a1, a2, a3], 1))
        return self.a4(torch.cat([o1, a2, a3, a3_], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.body(x)
        if self.training and self.aux_phase:
            return self.aux_head(z)
        return self.head(z)

    def phase(self, epoch: int) -> str:
        p = self.p
        if epoch < p.pretrain_epochs and self.n_aux_outputs:
            return "pretrain"
        if epoch < p.pretrain_epochs + p.scored_epochs:
            return "scored"
        if epoch < p.pretrain_epochs + p.scored_epochs + p.frozen_epochs:
            return "frozen"
        return "unfrozen"

    def set_epoch(self, epoch: int) -> float:
        """Put the model in the epoch's phase; returns the phase's lr multiplier (the trainer applies it)."""
        phase = self.phase(epoch)
        self.aux_phase = phase == "pretrain"
        trainable = {
            "pretrain": {"out1", "a1", "a2", "a3", "a3_", "a4", "aux_head"},
            "scored": {"out1", "a1", "a2", "a3", "a3_", "a4", "head"},
            "frozen": {"a4", "head"},
            "unfrozen": {"out1", "a1", "a2", "a3", "a3_", "a4", "head"},
        }[phase]
        for name, child in self.named_children():
            for q in child.parameters():
                q.requires_grad_(name in trainable)
        return {"frozen": self.p.frozen_lr_scale, "unfrozen": self.p.unfrozen_lr_scale}.get(phase, 1.0)


def build(params: TwoHeadsParams, info: dict[str, Any]) -> nn.Module:
    return TwoHeadsResNet(
        params,
        n_features=int(info["n_features"]),
        n_outputs=int(info["n_outputs"]),
        n_aux_outputs=int(info.get("n_aux_outputs", 0)),
    )
