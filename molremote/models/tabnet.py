"""TabNet (Arik & Pfister 2019) as pytorch-tabnet's network module `pytorch_tabnet.tab_network.TabNet`, trained by
molremote's own trainer, not by `TabNetClassifier.fit`: the trainer's checkpoints (model, optimizer, scheduler,
RNG, batch position) keep exact resume, which pytorch-tabnet's fit loop cannot (it saves weights only).

Notes on pytorch-tabnet 4.1.0 with current torch: its fit loop detects plateau schedulers with
`hasattr(scheduler, "is_better")` (torch renamed it `_is_better`) and imports `scipy.sparse.base` (gone from
recent SciPy); neither is used here, only the network module, which needs an explicit
`group_attention_matrix` (its default `[]` fails in `__init__`). The sparsity regulariser (`M_loss`) is
dropped: the MoA winners trained with `lambda_sparse=0`. Categorical embeddings are not used: the MoA
features carry cp_time / cp_dose as numbers, as the winners' NN did.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .params import TabNetParams


class TabNetModel(nn.Module):
    """Logits (B, n_outputs) from pytorch-tabnet's TabNet; the attention-sparsity term is not returned."""

    def __init__(self, p: TabNetParams, n_features: int, n_outputs: int):
        super().__init__()
        try:
            from pytorch_tabnet.tab_network import TabNet
        except ImportError:
            raise ValueError("model 'tabnet' needs pytorch-tabnet: pip install 'molremote[tabular]'") from None
        self.net = TabNet(
            input_dim=n_features,
            output_dim=n_outputs,
            n_d=p.n_d,
            n_a=p.n_a,
            n_steps=p.n_steps,
            gamma=p.gamma,
            n_independent=p.n_independent,
            n_shared=p.n_shared,
            virtual_batch_size=p.virtual_batch_size,
            momentum=p.momentum,
            mask_type=p.mask_type,
            epsilon=p.epsilon,
            group_attention_matrix=torch.eye(n_features),  # one group per feature: plain TabNet
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _m_loss = self.net(x)
        return out


def build(params: TabNetParams, info: dict[str, Any]) -> nn.Module:
    return TabNetModel(params, n_features=int(info["n_features"]), n_outputs=int(info["n_outputs"]))
