"""A tiny ESM-2 for demos and tests, trained offline (~20 CPU-seconds): no pretrained ESM-2 checkpoint ships in any
package we found (fair-esm and transformers download weights at run time), so the offline demos use this
model and say so, and real experiments use the Hub ids.

Same architecture family and tokenizer vocabulary as ESM-2 (transformers' `EsmForMaskedLM`: rotary
positions, pre-LayerNorm blocks, token dropout, ESM's 33-token vocabulary), a few layers wide, trained with
ESM's masked-LM objective (15% of residues: 80% <mask>, 10% random residue, 10% kept) on random crops of the
given proteins. Deterministic for a seed on CPU; saved in Hugging Face format, so `EmbeddingSpec(<folder>)`
loads it exactly as it loads a Hub model."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import fsutil
from ..errors import DataError

# ESM-2's vocabulary, in its order (facebook/esm2_* vocab.txt): 4 specials, 25 residue letters, gap symbols.
ESM_VOCAB = "<cls> <pad> <eos> <unk> L A G V S E R T I D P K Q N F Y M H W C X B U Z O . - <null_1> <mask>".split()
_RESIDUES = "LAGVSERTIDPKQNFYMHWC"  # the 20 standard residues, drawn for the 10% random replacements


def build_demo_protein_model(
    sequences: Sequence[str],
    out_dir: Path,
    *,
    seed: int = 0,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    steps: int = 150,
    batch: int = 16,
    crop: int = 96,
    lr: float = 2e-3,
) -> Path:
    """Train and save the model in `out_dir` (replaced whole, atomically); returns `out_dir`.

    Sizes: 64 wide, 2 layers (74k parameters) learn residue statistics and local context from ~200 proteins
    in 150 steps of 16 crops of 96 residues: ~20 s of one CPU core (measured: 188 proteins of 250-700
    residues, 19.7 CPU-s, masked-LM loss 3.21 -> 3.01; ln 20 = 3.00 is a uniform guess over residues, so
    on random proteins that is all there is to learn). Fewer `steps` for tests."""
    import torch
    from transformers import EsmConfig, EsmForMaskedLM, EsmTokenizer
    from transformers.utils import logging as hf_logging

    seqs = [s.upper() for s in sequences if s]
    if not seqs:
        raise DataError("build_demo_protein_model: no sequences to train on")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tok_id = {t: i for i, t in enumerate(ESM_VOCAB)}
    table = np.full(256, tok_id["<unk>"], dtype=np.int64)
    for t, i in tok_id.items():
        if len(t) == 1:
            table[ord(t)] = i
    encoded = [table[np.frombuffer(s.encode("ascii", "replace"), dtype=np.uint8)] for s in seqs]

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    config = EsmConfig(
        vocab_size=len(ESM_VOCAB),
        mask_token_id=tok_id["<mask>"],
        pad_token_id=tok_id["<pad>"],
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=2 * hidden,
        max_position_embeddings=1026,  # ESM-2's: 1022 residues + <cls> + <eos> (+ padding offset)
        position_embedding_type="rotary",
        emb_layer_norm_before=False,
        token_dropout=True,
        layer_norm_eps=1e-5,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = EsmForMaskedLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    residue_ids = np.array([tok_id[c] for c in _RESIDUES])
    losses: list[float] = []
    model.train()
    for _ in range(steps):
        ids, labels = _mlm_batch(encoded, rng, batch, crop, tok_id, residue_ids)
        out = model(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy((ids != tok_id["<pad>"]).astype(np.int64)),
            labels=torch.from_numpy(labels),
        )
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    model.eval()

    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model.save_pretrained(tmp)  # safetensors
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        (tmp / "vocab.txt").write_text("\n".join(ESM_VOCAB) + "\n")
        EsmTokenizer(str(tmp / "vocab.txt")).save_pretrained(tmp)
        head = max(1, steps // 10)
        info = {
            "what": "tiny ESM-2 (EsmForMaskedLM) trained with masked-LM by molremote.embeddings.demo_model",
            "seed": seed,
            "sequences": len(seqs),
            "steps": steps,
            "parameters": sum(p.numel() for p in model.parameters()),
            "mlm_loss_first_steps": float(np.mean(losses[:head])),
            "mlm_loss_last_steps": float(np.mean(losses[-head:])),
        }
        fsutil.write_text(tmp / "molremote_demo.json", json.dumps(info, indent=2) + "\n")
        os.chmod(tmp, 0o777 & ~fsutil._umask())
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _mlm_batch(
    encoded: list[np.ndarray],
    rng: np.random.Generator,
    batch: int,
    crop: int,
    tok_id: dict[str, int],
    residue_ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Random crops with <cls>/<eos>, 15% of residues chosen; labels -100 elsewhere."""
    picks = rng.integers(0, len(encoded), size=batch)
    crops = []
    for p in picks:
        s = encoded[p]
        start = int(rng.integers(0, max(1, len(s) - crop + 1)))
        crops.append(s[start : start + crop])
    width = max(len(c) for c in crops) + 2
    ids = np.full((batch, width), tok_id["<pad>"], dtype=np.int64)
    labels = np.full((batch, width), -100, dtype=np.int64)
    for r, c in enumerate(crops):
        ids[r, 0], ids[r, len(c) + 1] = tok_id["<cls>"], tok_id["<eos>"]
        ids[r, 1 : len(c) + 1] = c
        chosen = rng.random(len(c)) < 0.15
        if not chosen.any():
            chosen[int(rng.integers(0, len(c)))] = True
        pos = np.flatnonzero(chosen) + 1
        labels[r, pos] = ids[r, pos]
        roll = rng.random(len(pos))
        ids[r, pos[roll < 0.8]] = tok_id["<mask>"]
        rand = pos[(roll >= 0.8) & (roll < 0.9)]
        ids[r, rand] = rng.choice(residue_ids, size=len(rand))
    return ids, labels
