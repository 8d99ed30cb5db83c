"""Text-to-molecule retrieval on the shipped demo data (1,000 real NCI molecules: 850 training pairs, 150 test; synthetic
descriptions): Base 3-layer GCN + frozen pretrained all-MiniLM-L6-v2 (packaged, offline). The frozen
tower's text features are computed once, so each epoch only trains the GCN and the two projection heads.
CPU: a couple of minutes at most for `molremote train -e 2`."""
from molremote.experiments import experiment

EXPERIMENT = experiment(
    description="text2mol demo: Base GCN (3 layers) + frozen MiniLM, contrastive loss",
    tags=["text2mol", "demo"],
    task={"name": "text2mol", "loss": "contrastive",
          "text_max_length": 96},  # demo descriptions are 30-70 word-pieces
    model={"name": "gcn_text", "num_layers": 3, "hidden": 128, "head_hidden": 256, "embed_dim": 128,
           "text_model": "minilm", "freeze_text": True,
           "pooling": "mean"},  # MiniLM is a sentence encoder trained with mean pooling
    training={"epochs": 10, "batch_size": 32,  # 22 steps per epoch on the 680 training pairs of a fold
              "lr": 1e-3,  # small from-scratch GCN and heads: a frozen text tower allows a high LR
              "optimizer": "adamw", "weight_decay": 1e-2, "device": "cpu",
              "threads": 1},  # tiny GCN steps: 2 threads on a busy 2-core CPU ran 10x slower (spin waits)
    folds={"n_folds": 5, "scheme": "random", "run": [0]},
)
