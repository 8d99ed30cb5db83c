"""Text-to-molecule retrieval (ALTEGRAD 2023/24 challenge on ChEBI-20 / Text2Mol).

Data: the ALTEGRAD folder layout (see data.py). The training pool is train.tsv followed by
val.tsv. Fold schemes (`folds.scheme`):
  - "random" (default): every pool pair gets a seeded random fold in 0..n_folds-1;
  - "official": fold 0 is exactly val.tsv (the challenge's validation split), train.tsv rows are spread
    at random over folds 1..n_folds-1, so `--fold 0` trains on train.tsv and validates on val.tsv.

Samples are (text, molecule) pairs. A test "sample" k is text line k of test_text.txt and molecule
test_cids[k]: they are NOT a pair (the challenge shuffles them), which is why test_text.txt and test_cids.txt
must have the same length; the submission is the full text x molecule similarity matrix.

Batches: {"graph": torch_geometric Batch (x = token embedding of each node's substructure id, 'UNK' when
absent from the dictionary), "text_feat": cached text tower features} when the text tower is frozen (computed
once in setup() and kept in memory only), else {"graph", "input_ids", "attention_mask"}.

Outputs: predict() -> {"text_emb", "mol_emb"} (L2-normalised); score = LRAP of the validation pairs (rows =
texts, columns = molecules). Predictions: predictions/<split>.parquet with columns id (molecule CID),
text_id (CID described by the text; test: line of test_text.txt), text_emb, mol_emb (fixed-size float32
lists); read them with data.read_embeddings_parquet, no torch needed. Submission: `ID,0,...,n-1`,
one row per test text, columns in test_cids.txt order, values = cosine similarity.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import DataError, ExperimentError
from ..base import Task
from . import data as td
from .params import Text2MolParams
from .results import Text2MolResults

if TYPE_CHECKING:  # pragma: no cover
    from ...experiments import Experiment

FILES = ("train.tsv", "val.tsv", "test_cids.txt", "test_text.txt", "token_embedding_dict.npy", "raw")


class Text2MolTask(Task):
    params: Text2MolParams
    name = Text2MolResults.name
    metric_name = Text2MolResults.metric_name
    greater_is_better = Text2MolResults.greater_is_better
    data_help = (
        "Put the ALTEGRAD 2023/24 / ChEBI-20 files in that folder: raw/<cid>.graph, "
        "token_embedding_dict.npy, train.tsv, val.tsv, test_cids.txt, test_text.txt "
        "(from the challenge's data archive), or set data.root to where they are "
        "(scripts/make_demo_text2mol.py builds the same layout from SMILES)."
    )

    def __init__(self, exp: Experiment):
        super().__init__(exp)
        self._loaded = False
        self._tokenizer: Any = None
        self._text_cache: dict[str, Any] | None = None

    # ------------------------------------------------------------------ data
    def load(self) -> None:
        if self._loaded:
            return
        self.require(*FILES)
        d = self.data_dir()
        tr_cids, tr_texts = td.read_pairs(d / "train.tsv")
        va_cids, va_texts = td.read_pairs(d / "val.tsv")
        self.cids = np.concatenate([tr_cids, va_cids])
        self.texts = tr_texts + va_texts
        self.official_valid = np.r_[np.zeros(len(tr_cids), bool), np.ones(len(va_cids), bool)]
        self.test_cids = td.read_cids(d / "test_cids.txt")
        self.test_texts = td.read_lines(d / "test_text.txt")
        while self.test_texts and not self.test_texts[-1]:
            self.test_texts.pop()
        if len(self.test_texts) != len(self.test_cids):
            raise DataError(
                f"{d / 'test_text.txt'} has {len(self.test_texts)} lines but {d / 'test_cids.txt'} "
                f"has {len(self.test_cids)} CIDs: the submission needs one text per molecule"
            )
        emb = td.load_token_embeddings(d / "token_embedding_dict.npy")
        self.emb, index = td.embedding_matrix(emb)
        unk = index[td.UNK]
        self.graphs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        n_nodes = n_unk = 0
        for cid in np.unique(np.concatenate([self.cids, self.test_cids])).tolist():
            p = d / "raw" / f"{cid}.graph"
            if not p.exists():
                raise DataError(
                    f"graph file {p} not found (CID {cid} is listed in the pairs or test_cids.txt). {self.data_help}"
                )
            g = td.read_graph(p)
            tok = np.fromiter((index.get(s, unk) for s in g.ids), dtype=np.int64, count=g.n_nodes)
            n_nodes += len(tok)
            n_unk += int((tok == unk).sum())
            self.graphs[cid] = (tok, np.ascontiguousarray(g.edges.T))
        self.unk_fraction = n_unk / max(1, n_nodes)
        self._loaded = True

    def n_train(self) -> int:
        return len(self.cids)

    def n_test(self) -> int:
        return len(self.test_cids)

    def fold_assignment(self) -> np.ndarray:
        f = self.exp.folds
        rng = np.random.default_rng(f.seed)
        n = self.n_train()
        if f.scheme == "random":
            return (rng.permutation(n) % f.n_folds).astype(np.int64)
        if f.scheme == "official":
            if f.n_folds < 2:
                raise ExperimentError("scheme 'official' needs n_folds >= 2 (fold 0 = val.tsv)", field="folds.n_folds")
            out = np.zeros(n, dtype=np.int64)
            tr = np.flatnonzero(~self.official_valid)
            out[tr] = 1 + rng.permutation(len(tr)) % (f.n_folds - 1)
            return out
        raise ExperimentError(
            f"unknown fold scheme {f.scheme!r} for text2mol (random | official)", field="folds.scheme"
        )

    def model_info(self) -> dict[str, Any]:
        return {"node_features": int(self.emb.shape[1])}

    # ------------------------------------------------------------------ torch side
    def _split_arrays(self, split: str) -> tuple[np.ndarray, list[str]]:
        if split == "test":
            return self.test_cids, self.test_texts
        if split in ("train", "valid"):
            return self.cids, self.texts
        raise ValueError(f"unknown split {split!r}")

    def setup(self, model: Any, device: Any) -> None:
        """Keep the model's tokenizer; with a frozen text tower embed every text once (memory only)."""
        import torch

        m = getattr(model, "module", model)
        self._tokenizer = m.tokenizer
        self._text_cache = None
        if not m.text_frozen:
            return
        was_training = m.training
        m.eval()
        cache = {}
        bs = self.params.text_cache_batch_size
        with torch.no_grad():
            for split in ("train", "test"):
                texts = self._split_arrays(split)[1]
                out = None
                order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths: less padding
                for s in range(0, len(order), bs):
                    b = order[s : s + bs]
                    tok = self._tokenize([texts[i] for i in b], device)
                    feat = m.text_features(tok["input_ids"], tok["attention_mask"]).float()
                    if out is None:
                        out = torch.empty(len(texts), feat.shape[1], device=device)
                    out[torch.as_tensor(b, device=device)] = feat
                cache[split] = out
        self._text_cache = cache
        m.train(was_training)

    def _tokenize(self, texts: list[str], device: Any) -> dict[str, Any]:
        if self._tokenizer is None:
            raise RuntimeError("text2mol: call task.setup(model, device) before batch() (it needs the tokenizer)")
        tok = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self.params.text_max_length, return_tensors="pt"
        )
        return {"input_ids": tok["input_ids"].to(device), "attention_mask": tok["attention_mask"].to(device)}

    def graph_batch(self, cids: np.ndarray, device: Any) -> Any:
        import torch
        from torch_geometric.data import Batch, Data

        data = []
        for cid in cids.tolist():
            tok, edges = self.graphs[cid]
            data.append(Data(x=torch.from_numpy(self.emb[tok]), edge_index=torch.from_numpy(edges)))
        return Batch.from_data_list(data).to(device)

    def batch(self, split: str, idx: np.ndarray, device: Any) -> dict[str, Any]:
        import torch

        idx = np.asarray(idx, dtype=np.int64)
        cids, texts = self._split_arrays(split)
        out: dict[str, Any] = {"graph": self.graph_batch(cids[idx], device)}
        key = "test" if split == "test" else "train"
        if self._text_cache is not None:
            out["text_feat"] = self._text_cache[key][torch.as_tensor(idx, device=self._text_cache[key].device)]
        else:
            out.update(self._tokenize([texts[i] for i in idx.tolist()], device))
        return out

    def logits(self, model: Any, batch: dict[str, Any]) -> Any:
        """(B, B) text x molecule logits: exp(logit_scale) * cosine + logit_bias."""
        m = getattr(model, "module", model)
        t, g = model(batch)
        return m.scale() * t @ g.T + m.logit_bias

    def loss(self, model: Any, batch: dict[str, Any]) -> Any:
        import torch
        import torch.nn.functional as F

        logits = self.logits(model, batch)
        n = logits.shape[0]
        if self.params.loss == "contrastive":
            # softmax cross-entropy is shift-invariant: logit_bias gets a zero gradient here, as intended
            target = torch.arange(n, device=logits.device)
            return F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)
        eye = torch.eye(n, device=logits.device, dtype=logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, eye) + F.binary_cross_entropy_with_logits(logits.T, eye)

    def predict(self, model: Any, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        t, g = model(batch)
        return {"text_emb": t.float().cpu().numpy(), "mol_emb": g.float().cpu().numpy()}

    # ------------------------------------------------------------------ metric and files
    def score(self, valid_idx: np.ndarray, outputs: dict[str, np.ndarray]) -> float:
        if len(outputs["text_emb"]) != len(valid_idx):
            raise ValueError(f"{len(outputs['text_emb'])} outputs for {len(valid_idx)} validation pairs")
        return td.lrap(outputs["text_emb"], outputs["mol_emb"])

    def baseline_score(self, valid_idx: np.ndarray) -> float:
        return td.random_lrap(len(valid_idx))

    def write_predictions(self, out_dir: Path, split: str, idx: np.ndarray, outputs: dict[str, np.ndarray]) -> Path:
        idx = np.asarray(idx, dtype=np.int64)
        if split == "test":
            ids, text_ids = self.test_cids[idx], idx
        else:
            ids = text_ids = self.cids[idx]
        return td.write_embeddings_parquet(
            Path(out_dir) / f"{split}.parquet", ids, text_ids, outputs["text_emb"], outputs["mol_emb"]
        )

    def write_submission(self, path: Path, test_outputs: dict[str, np.ndarray]) -> Path:
        t, g = test_outputs["text_emb"], test_outputs["mol_emb"]
        if len(t) != len(self.test_texts) or len(g) != len(self.test_cids):
            raise ValueError(
                f"submission needs all {len(self.test_texts)} test texts and {len(self.test_cids)} "
                f"test molecules in file order, got {len(t)} and {len(g)}"
            )
        return td.write_similarity_submission(Path(path), td.cosine_similarity(t, g))
