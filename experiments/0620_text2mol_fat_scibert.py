"""The write-up's Fat GCN: 7 GCNConv layers (residual pairs as in 610), otherwise experiment 610
(exp. 573: LoRA SciBERT + Fat GCN, batch 64, 0.796 LRAP)."""
from molremote.experiments import derive

EXPERIMENT = derive(610, description="text2mol: Fat GCN (7 layers) + LoRA SciBERT",
                    tags=["text2mol", "altegrad", "fat-gcn"], model={"num_layers": 7})
