"""ESM-2 (transformers' `EsmModel`) as a protein embedder: load from a local folder or the Hugging Face cache,
tokenize residues vectorised with the model's own vocabulary, and mean-pool the last hidden state over the
residues (never <cls>, <eos> or padding). Imported only when an ESM spec is computed: this is where torch and
transformers are imported."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataError, UsageError
from .spec import EmbeddingSpec


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: no CUDA device on this machine (use cpu or auto)")
    if not (device == "cpu" or device.startswith("cuda")):
        raise UsageError(f"--device {device}: use auto, cpu, cuda or cuda:N")
    return device


class EsmEmbedder:
    """`embed(list of residue strings) -> float32 [n, hidden]`, one padded batch per call."""

    def __init__(self, spec: EmbeddingSpec, device: str = "auto"):
        import torch
        from transformers import AutoTokenizer, EsmModel
        from transformers.utils import logging as hf_logging

        self.device = resolve_device(device)
        where = str(spec.local_dir) if spec.local_dir is not None else spec.model
        kw: dict[str, Any] = {} if spec.local_dir is not None else {"revision": spec.revision}
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the MLM head a checkpoint carries is not needed: no warning about it
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            tok = AutoTokenizer.from_pretrained(where, **kw)
            self.model = EsmModel.from_pretrained(where, add_pooling_layer=False, **kw)
        except OSError as e:
            raise DataError(_missing_model(spec, e)) from None
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        self.model.eval().to(self.device)
        vocab = tok.get_vocab()
        self.cls_id, self.eos_id, self.pad_id = tok.cls_token_id, tok.eos_token_id, tok.pad_token_id
        unk = tok.unk_token_id
        self._table = np.full(256, unk, dtype=np.int64)
        for t, i in vocab.items():
            if len(t) == 1:
                self._table[ord(t)] = i
        self.dim = int(self.model.config.hidden_size)
        max_pos = int(getattr(self.model.config, "max_position_embeddings", 1026))
        if spec.max_len + 2 > max_pos and self.model.config.position_embedding_type == "absolute":
            raise UsageError(f"max_len {spec.max_len}: the model takes at most {max_pos - 2} residues")
        self._autocast: Any = contextlib.nullcontext
        if self.device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            self._autocast = lambda: torch.autocast("cuda", dtype=dtype)
        self._torch = torch

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """input ids [n, longest + 2] and lengths (residues) of a batch: <cls> residues <eos> <pad>..."""
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        ids = np.full((len(texts), int(lengths.max()) + 2), self.pad_id, dtype=np.int64)
        ids[:, 0] = self.cls_id
        for r, t in enumerate(texts):
            ids[r, 1 : len(t) + 1] = self._table[np.frombuffer(t.upper().encode("ascii", "replace"), dtype=np.uint8)]
            ids[r, len(t) + 1] = self.eos_id
        return ids, lengths

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        ids_np, lengths = self.encode(texts)
        ids = torch.from_numpy(ids_np).to(self.device)
        pos = torch.arange(ids.shape[1], device=self.device)[None, :]
        n = torch.from_numpy(lengths).to(self.device)[:, None]
        attention = pos <= n + 1  # <cls>, residues, <eos>
        residues = ((pos >= 1) & (pos <= n)).unsqueeze(-1)
        with torch.inference_mode(), self._autocast():
            hidden = self.model(input_ids=ids, attention_mask=attention.long()).last_hidden_state
        hidden = hidden.float().masked_fill(~residues, 0.0)
        return (hidden.sum(1) / n.float()).cpu().numpy()


def _missing_model(spec: EmbeddingSpec, e: OSError) -> str:
    if spec.local_dir is not None:
        return f"embedding model folder {spec.local_dir}: not a Hugging Face model ({str(e).splitlines()[0]})"
    if "/" not in spec.model and not spec.model.startswith("kmer"):
        hint = "not a folder on this machine, nor a Hub id (owner/name)"
    elif os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        hint = "not in the Hugging Face cache and HF_HUB_OFFLINE is set"
    else:
        hint = "could not be loaded from the Hub or its cache"
    return (
        f"embedding model {spec.model!r}: {hint}. Download it where there is network "
        f"(`hf download {spec.model}`, then copy the cache or pass the local folder), or use a local folder "
        f"(e.g. one written by build_demo_protein_model) or kmer:<k>"
    )
