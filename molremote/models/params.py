"""Model hyper-parameters (torch-free pydantic models), validated when an experiment is resolved."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator


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
    hidden: int = 300  # GCN channels; the ALTEGRAD baseline's graph_hidden_channels
    residual: bool = False  # skip connection around each pair of convs after the first (5 layers -> 2)
    head_hidden: int = 300  # hidden width of both projection MLPs (baseline nhid=300)
    embed_dim: int = 256
    dropout: float = 0.1
    text_model: str = "minilm"  # "minilm" (packaged all-MiniLM-L6-v2), a local path, or a Hub id
    freeze_text: bool = True  # frozen tower: text embeddings computed once and cached
    lora_r: int | None = None  # PEFT LoRA rank on the text tower (None: no LoRA); needs freeze_text=False
    lora_alpha: int | None = None  # None: 2 * lora_r (the common default scaling of 2)
    lora_dropout: float = 0.1
    temperature: float = 0.07  # initial value (CLIP's); learnable
    learn_temperature: bool = True
    # initial value of the learnable logit bias, used by the binary contrastive loss only (softmax losses
    # ignore a shift). SigLIP's -10: every pair starts as "no match", as B-1 of B pairs in a batch are;
    # from 0 the bias alone needs thousands of steps to get there and retrieval barely moves meanwhile.
    logit_bias: float = -10.0
    text_lr: float | None = None  # separate LR for an unfrozen text tower (see GcnText.param_groups)
    pooling: Literal["cls", "mean"] = "cls"  # the write-up uses CLS; MiniLM was trained with mean pooling

    @field_validator("num_layers")
    @classmethod
    def _layers(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v

    @model_validator(mode="after")
    def _lora_needs_trainable(self) -> GcnTextParams:
        if self.lora_r is not None and self.freeze_text:
            raise ValueError("lora_r trains adapters inside the text tower: set freeze_text=False with it")
        return self


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


class TabularMlpParams(_Params):
    """MoA 1st place weight-normalised 3-block MLP on tabular features (models/tabular_mlp.py)."""

    hidden: int = 2048  # winners: 2048 (simple NN, stages 1-2), 1024 (stage 3)
    dropout: tuple[float, float, float] = (0.15, 0.3, 0.25)  # the 3-stage NN's three blocks
    negative_slope: float = 0.01  # leaky ReLU: torch's default, the winners left it unset

    @field_validator("hidden")
    @classmethod
    def _hidden(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v


class ClipPlParams(_Params):
    """Affinity CLIP: protein tower + ligand tower in one embedding space (models/clip_pl.py)."""

    # protein tower: "cached" = frozen pretrained embeddings from the core embedding cache + projection
    # (the reference's ESM-2), or a trainable encoder on amino-acid tokens ("cnn1d" | "transformer")
    protein: Literal["cached", "cnn1d", "transformer"] = "cnn1d"
    protein_params: dict = {}  # the tower's own parameters (Cnn1dParams / TransformerParams fields)
    protein_embedding: str = "kmer:3"  # cached tower: EmbeddingSpec.model (HF id, local folder, "kmer:3")
    protein_policy: Literal["headtail", "window"] = "headtail"  # cached tower: how long sequences are cut
    ligand: Literal["cnn1d", "transformer"] = "cnn1d"  # BELKA's SMILES towers on SMILES characters
    ligand_params: dict = {}
    tower_dim: int = 256  # each tower's output width, before the projection heads
    embed_dim: int = 128  # the shared space
    proj_hidden: int = 256  # hidden width of both projection MLPs
    dropout: float = 0.1
    temperature: float = 0.07  # CLIP's initial value; learnable
    learn_temperature: bool = True
    mask_false_negatives: bool = True  # batch pairs sharing a protein or a ligand are not negatives
    # affinity regression head on [p, l, p*l]: "none", "joint" (its loss trains the towers too) or
    # "detached" (trained on the towers' embeddings with gradients stopped: the towers stay contrastive)
    regression: Literal["none", "joint", "detached"] = "none"
    regression_weight: float = 1.0  # loss = InfoNCE + weight * MSE(standardised affinity)
    regression_hidden: int = 256

    @model_validator(mode="after")
    def _towers(self) -> ClipPlParams:
        for name, kind, extra in (
            ("protein", self.protein, self.protein_params),
            ("ligand", self.ligand, self.ligand_params),
        ):
            if kind == "cached":
                if extra:
                    raise ValueError("protein_params are for a trainable tower; the cached tower has none")
                continue
            cls = Cnn1dParams if kind == "cnn1d" else TransformerParams
            try:
                cls(**extra)
            except Exception as e:  # pydantic ValidationError: name the tower and the key
                first = str(e).splitlines()
                raise ValueError(f"{name}_params for '{kind}': {' '.join(first[1:3]) or first[0]}") from None
        return self


class ProteinMlpParams(_Params):
    """CAFA write-up's simple classifier on protein embeddings: Linear(E, 512) -> ReLU -> Dropout -> Linear(512, K)."""

    hidden: int = 512
    dropout: float = 0.3


class ProteinMultitaskParams(_Params):
    """CAFA write-up's multi-task classifier: a shared Linear(E, 1024) -> ReLU -> Dropout(0.3) trunk, then one
    head per namespace, Linear(1024, 512) -> ReLU -> Dropout(0.2) -> Linear(512, K_aspect)."""

    shared: int = 1024
    aspect_hidden: int = 512
    dropout: float = 0.3
    head_dropout: float = 0.2


class TabNetParams(_Params):
    """pytorch-tabnet's TabNet network (models/tabnet.py) inside molremote's trainer. Defaults: the MoA 1st place
    2-stage NN+TabNet's TabNetRegressor (n_d = n_a = 32, one step, entmax masks, virtual batch 128)."""

    n_d: int = 32  # width of the decision prediction layer (winners: 32)
    n_a: int = 32  # width of the attention embedding per mask (winners: 32)
    n_steps: int = 1  # decision steps (winners: 1; pytorch-tabnet's default 3 overfitted MoA)
    # feature re-use relaxation across steps: the winners' code leaves pytorch-tabnet's 1.3 (the write-up's
    # "gamma 0.9" is their MultiStepLR's gamma)
    gamma: float = 1.3
    n_independent: int = 2  # step-specific GLU layers (pytorch-tabnet default, the winners kept it)
    n_shared: int = 2  # GLU layers shared across steps (pytorch-tabnet default)
    virtual_batch_size: int = 128  # ghost batch norm chunk (winners: 128 inside batches of 1024)
    momentum: float = 0.02  # ghost batch norm momentum (pytorch-tabnet default)
    mask_type: Literal["entmax", "sparsemax"] = "entmax"  # winners: entmax
    epsilon: float = 1e-15  # pytorch-tabnet default

    @field_validator("n_d", "n_a", "n_steps", "virtual_batch_size")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v


class TwoHeadsParams(_Params):
    """MoA 1st place 2-heads ResNet (models/two_heads.py): a residual MLP pre-trained on the non-scored targets,
    then trained on the scored ones with the body frozen, then unfrozen. Phases are counted in epochs."""

    hidden: int = 512  # the Keras model's wide blocks: Dense(512)
    narrow: int = 256  # ... and its 256-unit blocks
    dropout: tuple[float, float] = (0.2, 0.3)  # the input block's and the first residual block's dropouts
    pretrain_epochs: int = 10  # phase 1: non-scored head (winners: up to 50 with early stopping, patience 10)
    scored_epochs: int = 10  # phase 2: scored head, everything trainable (winners: up to 50, patience 10)
    frozen_epochs: int = 3  # phase 3: only the last block and the scored head train (winners' loop, patience 3)
    frozen_lr_scale: float = 1 / 3  # winners: lr 1e-3 / 3 while frozen
    unfrozen_lr_scale: float = 1 / 5  # phase 4 (the remaining epochs): all trainable again at lr 1e-3 / 5

    @field_validator("pretrain_epochs", "scored_epochs", "frozen_epochs")
    @classmethod
    def _non_negative(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must be >= 0")
        return v


class DeepInsightParams(_Params):
    """DeepInsight CNN (models/deepinsight.py) over the task's feature -> pixel map (MoA: deepinsight_pixels)."""

    backbone: Literal["small", "efficientnet_b3", "resnest50_fast_2s2x40d"] = "small"  # big ones: optional extra
    pretrained: bool = False  # ImageNet weights for a big backbone (downloads; the winners used NS / ResNeSt ones)
    channels: tuple[int, ...] = (32, 64, 128)  # the small CNN: conv3x3-BN-ReLU-maxpool blocks
    fc_hidden: int = 512  # the winners' head: FC 512 + ELU replacing the backbone's classifier
    dropout: float = 0.0  # on the head (winners: 0, ResNeSt v2: 0.2)
    swap_prob: float = 0.1  # swap noise: a training row is noised with this probability (winners: 0.1) ...
    swap_portion: float = 0.15  # ... by taking this share of its features from another row (winners: 0.15)
    swap_skip: int = 2  # leading features never swapped (the winners kept their 3 one-hot columns; here 2 codes)

    @field_validator("swap_prob", "swap_portion")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0 <= v <= 1:
            raise ValueError("must be between 0 and 1")
        return v
