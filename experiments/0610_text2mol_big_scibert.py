"""The write-up's Big GCN (5 GCNConv layers, residual connections around layers 2-3 and 4-5) with SciBERT
(allenai/scibert_scivocab_uncased) trained through LoRA adapters, batch 64 (exp. 571: 0.716 LRAP)."""
from molremote.experiments import derive

EXPERIMENT = derive(
    600,
    description="text2mol: Big GCN (5 layers, 2 residuals) + LoRA SciBERT",
    tags=["text2mol", "altegrad", "big-gcn"],
    model={"num_layers": 5, "residual": True, "text_model": "allenai/scibert_scivocab_uncased",
           "lora_r": 8},  # LoRA: SciBERT did not fit more than batch 64 on the team's GPUs otherwise
    training={"batch_size": 64, "lr": 3e-4},  # exp. 502/571 settings for LoRA SciBERT
)
