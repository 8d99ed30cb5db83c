"""Model hyper-parameters (torch-free pydantic models), validated when an experiment is resolved."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cnn1dParams(_Params):
    """BELKA 5th-place / public starter 1D CNN on character tokens."""

    embed_dim: int = 128
    channels: list[int] = [32, 64, 96]  # three Conv1d k=3 blocks, widening
    kernel_size: int = 3
    hidden: list[int] = [1024, 1024, 512]  # MLP head
    dropout: float = 0.1
    bn_eps: float = 5e-3  # the write-up notes eps 5e-3 / momentum 0.2 as important (Keras-style BN)
    bn_momentum: float = 0.2


class GcnTextParams(_Params):
    """ALTEGRAD text2mol: GCN molecule tower + BERT-family text tower, shared embedding space."""

    num_layers: int = 3  # Base 3, Big 5 (2 residuals), Fat 7
    hidden: int = 300
    residual: bool = False
    embed_dim: int = 256
    dropout: float = 0.1
    text_model: str = "minilm"  # "minilm" (packaged all-MiniLM-L6-v2), a local path, or a Hub id
    freeze_text: bool = True  # frozen tower: text embeddings computed once and cached
    lora_r: int | None = None  # PEFT LoRA rank on the text tower (None: no LoRA)
    temperature: float = 0.07  # initial value; learnable
    learn_temperature: bool = True
    text_lr: float | None = None  # separate LR for an unfrozen text tower
    pooling: Literal["cls", "mean"] = "cls"


class TransformerParams(_Params):
    """BELKA 5th place transformer: char tokens + conv k=3 embedding, pre-LN encoder, masked mean pool."""

    d_model: int = 192  # write-up range 192-384
    n_layers: int = 4  # write-up range 4-8
    n_heads: int = 8  # 192 / 8 = 24-dim heads
    ff_mult: int = 4  # MLP width = ff_mult * d_model (the usual 4x)
    dropout: float = 0.1
    conv_kernel: int = 3  # the write-up's conv embedding over consecutive tokens (bigrams/trigrams)
    attention: Literal["auto", "sdpa", "flash"] = "auto"  # auto: flash-attn on CUDA when installed, else SDPA


class MambaParams(_Params):
    """BELKA 5th place mamba: char tokens + conv k=3 embedding, pre-norm Mamba blocks, masked mean pool."""

    d_model: int = 128  # write-up range 128-256
    n_layers: int = 4  # write-up range 4-8
    d_state: int = 16  # SSM state size (write-up and mamba_ssm default)
    d_conv: int = 4  # mixer's causal depthwise conv width (write-up and mamba_ssm default)
    expand: int = 2  # inner width = expand * d_model (write-up and mamba_ssm default)
    dropout: float = 0.1
    conv_kernel: int = 3  # token conv embedding, as for the transformer
    backend: Literal["auto", "mamba_ssm", "torch"] = "auto"  # auto: mamba_ssm on CUDA when installed, else mambapy
