"""Affinity CLIP task: protein-ligand pairs, contrastive retrieval and affinity regression.

Data (`data.py`): `task.train_file` (the pool folds are cut from) and the optional `task.test_file` under
`data.root`, parquet or CSV in the layout of `jglaser/binding_affinity` (column names and affinity unit set
in the task parameters); bad SMILES / residues dropped and counted, or refused (`task.invalid`). Demo: the
KIBA sample of `pydebiaseddta` (`demo.py`), whose `split` column drives the "official" fold scheme.

Batches: {"prot_x": distinct proteins of the batch (uint8 tokens -> long, or cached float embeddings),
"prot_inv": each pair's row in prot_x, "lig_x", "lig_inv" likewise for SMILES tokens, "prot", "lig": global
protein / ligand ids (false-negative masking), "y": affinity standardised with the fold's training mean and
std}. Loss: symmetric InfoNCE, + regression_weight * MSE when the model has a regression head.
Outputs: predict() -> {"prot_emb", "lig_emb", "affinity" (pK or score; NaN without a head), "scale"}.
Score: recall@10 averaged over both directions on the validation pairs (metrics.py); all metrics go to
`predictions/<split>_metrics.json` (results.pair_metrics) next to the prediction files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..base import Task
from . import data as ad
from . import folds as af
from . import metrics as am
from .params import AffinityParams
from .results import AffinityResults, write_metrics

if TYPE_CHECKING:  # pragma: no cover
    from ...experiments import Experiment


class AffinityTask(Task):
    params: AffinityParams
    name = AffinityResults.name
    metric_name = AffinityResults.metric_name
    greater_is_better = AffinityResults.greater_is_better
    data_help = (
        "Get the public binding-affinity corpus the reference used (BindingDB + PDBbind + MOAD + BioLIP) from "
        "the Hugging Face Hub: `huggingface-cli download jglaser/binding_affinity --repo-type dataset "
        "--local-dir data/affinity` (columns seq, smiles_can, neg_log10_affinity_M, affinity_uM), or set "
        "data.root / task.train_file to your own pairs; the shipped KIBA demo needs no data.root."
    )

    def __init__(self, exp: Experiment):
        super().__init__(exp)
        self._loaded = False
        self._folds: np.ndarray | None = None
        self.mu, self.sigma = 0.0, 1.0
        self.prot_features: np.ndarray | None = None  # cached protein tower: (n_proteins, dim) float32

    # ------------------------------------------------------------------ data
    def _read(self, path: Path, labels: bool) -> ad.Pairs:
        p = self.params
        return ad.read_pairs(
            path,
            seq_col=p.seq_column,
            smiles_col=p.smiles_column,
            affinity_col=p.affinity_column if labels else None,
            unit=p.affinity_unit,
            invalid=p.invalid,
            keep=("split",),
        )

    def load(self) -> None:
        if self._loaded:
            return
        p = self.params
        (train_path,) = self.require(p.train_file)
        train = self._read(train_path, labels=True)
        test_path = self.data_dir() / p.test_file if p.test_file else None
        test = None
        if test_path is not None and test_path.exists():
            import pyarrow.parquet as pq

            has_y = (
                p.affinity_column in pq.read_schema(test_path).names
                if test_path.suffix == ".parquet"
                else p.affinity_column in ad.read_table(test_path, []).columns
            )
            test = self._read(test_path, labels=has_y)
        # one id space for proteins and ligands over both files
        self.proteins = sorted(set(train.proteins) | set(test.proteins if test else []))
        self.ligands = sorted(set(train.ligands) | set(test.ligands if test else []))
        pi = {s: i for i, s in enumerate(self.proteins)}
        li = {s: i for i, s in enumerate(self.ligands)}

        def remap(pairs: ad.Pairs) -> tuple[np.ndarray, np.ndarray]:
            pm = np.array([pi[s] for s in pairs.proteins], dtype=np.int64)
            lm = np.array([li[s] for s in pairs.ligands], dtype=np.int64)
            return pm[pairs.prot], lm[pairs.lig]

        self.train = train
        self.prot, self.lig = remap(train)
        self.test = test
        if test is not None:
            self.test_prot, self.test_lig = remap(test)
        else:
            self.test_prot = self.test_lig = np.zeros(0, dtype=np.int64)
        self.dropped = {"train": train.dropped, **({"test": test.dropped} if test else {})}
        bad = {k: {a: b for a, b in v.items() if b} for k, v in self.dropped.items()}
        bad = {k: v for k, v in bad.items() if v}
        if bad:
            import sys

            print(f"affinity: dropped rows {bad} (task.invalid='drop')", file=sys.stderr, flush=True)
        self.prot_tokens = ad.protein_tokens(self.proteins, p.protein_max_length)
        self.lig_tokens = ad.smiles_tokens(self.ligands, p.smiles_max_length)
        self._loaded = True

    def n_train(self) -> int:
        return len(self.train)

    def n_test(self) -> int:
        return len(self.test) if self.test is not None else 0

    def fold_assignment(self) -> np.ndarray:
        if self._folds is None:
            f = self.exp.folds
            scaffold = None
            if f.scheme == "scaffold":
                sc = np.array(ad.scaffolds(self.ligands), dtype=object)
                scaffold = sc[self.lig]
            self._folds = af.assign(
                f.scheme,
                f.n_folds,
                f.seed,
                prot=self.prot,
                lig=self.lig,
                scaffold=scaffold,
                split=self.train.extra.get("split"),
            )
        return self._folds

    def _model_param(self, key: str, default: Any) -> Any:
        return self.exp.model.params.get(key, default)

    def prepare_fold(self, fold: int, train_idx: np.ndarray, run_dir: Path) -> None:
        y = self.train.y[np.asarray(train_idx)]
        self.mu, self.sigma = float(y.mean()), float(y.std()) or 1.0
        if self._model_param("protein", None) == "cached" and self.prot_features is None:
            self.prot_features = self._cached_protein_embeddings()

    def _cached_protein_embeddings(self) -> np.ndarray:
        """Per distinct protein, the pretrained model's embedding from the core embedding cache (computed once
        per (model, policy, sequence) and shared by every experiment and task)."""
        from ...embeddings import EmbeddingSpec, embed_sequences

        spec = EmbeddingSpec(
            model=self._model_param("protein_embedding", "kmer:3"),
            policy=self._model_param("protein_policy", "headtail"),
        )
        return np.asarray(embed_sequences(spec, self.proteins), dtype=np.float32)

    def model_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "protein_vocab": ad.PROTEIN_VOCAB,
            "protein_max_length": self.params.protein_max_length,
            "smiles_vocab": ad.SMILES_VOCAB,
            "smiles_max_length": self.params.smiles_max_length,
        }
        if self.prot_features is not None:
            info["protein_dim"] = int(self.prot_features.shape[1])
        return info

    # ------------------------------------------------------------------ torch side
    def _ids(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if split == "test":
            if self.test is None:
                raise ValueError("this data has no test file")
            return self.test_prot, self.test_lig, self.test.y
        return self.prot, self.lig, self.train.y

    def batch(self, split: str, idx: np.ndarray, device: Any) -> dict[str, Any]:
        import torch

        idx = np.asarray(idx, dtype=np.int64)
        prot, lig, y = self._ids(split)
        pu, pinv = np.unique(prot[idx], return_inverse=True)
        lu, linv = np.unique(lig[idx], return_inverse=True)
        if self.prot_features is not None:
            prot_x = torch.from_numpy(self.prot_features[pu])
        else:
            prot_x = torch.from_numpy(self.prot_tokens[pu].astype(np.int64))
        out = {
            "prot_x": prot_x.to(device),
            "prot_inv": torch.from_numpy(pinv.reshape(-1)).to(device),
            "lig_x": torch.from_numpy(self.lig_tokens[lu].astype(np.int64)).to(device),
            "lig_inv": torch.from_numpy(linv.reshape(-1)).to(device),
            "prot": torch.from_numpy(prot[idx]).to(device),
            "lig": torch.from_numpy(lig[idx]).to(device),
            "y": torch.from_numpy(((y[idx] - self.mu) / self.sigma).astype(np.float32)).to(device),
        }
        return out

    def loss(self, model: Any, batch: dict[str, Any]) -> Any:
        import torch.nn.functional as F

        from ...models.clip_pl import info_nce

        m = getattr(model, "module", model)
        p, lg, r = model(batch)
        masked = m.params.mask_false_negatives
        loss = info_nce(p, lg, m.scale(), batch["prot"] if masked else None, batch["lig"] if masked else None)
        if r is not None:
            loss = loss + m.params.regression_weight * F.mse_loss(r.float(), batch["y"])
        return loss

    def predict(self, model: Any, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        m = getattr(model, "module", model)
        p, lg, r = model(batch)
        n = p.shape[0]
        aff = r.float().cpu().numpy() * self.sigma + self.mu if r is not None else np.full(n, np.nan)
        return {
            "prot_emb": p.float().cpu().numpy(),
            "lig_emb": lg.float().cpu().numpy(),
            "affinity": aff,
            "scale": np.full(n, float(m.scale().detach().cpu())),
        }

    # ------------------------------------------------------------------ metric and files
    def _sample(self, n: int) -> np.ndarray:
        return am.sample_positions(n)

    def score(self, valid_idx: np.ndarray, outputs: dict[str, np.ndarray]) -> float:
        if len(outputs["prot_emb"]) != len(valid_idx):
            raise ValueError(f"{len(outputs['prot_emb'])} outputs for {len(valid_idx)} validation pairs")
        s = self._sample(len(valid_idx))
        idx = np.asarray(valid_idx)[s]
        return am.recall_at_10(self.prot[idx], self.lig[idx], outputs["prot_emb"][s], outputs["lig_emb"][s])

    def baseline_score(self, valid_idx: np.ndarray) -> float:
        idx = np.asarray(valid_idx)[self._sample(len(valid_idx))]
        r = am.random_retrieval(self.prot[idx], self.lig[idx], ks=(10,))
        return (r["p2l_recall@10"] + r["l2p_recall@10"]) / 2

    def write_predictions(self, out_dir: Path, split: str, idx: np.ndarray, outputs: dict[str, np.ndarray]) -> Path:
        idx = np.asarray(idx, dtype=np.int64)
        prot, lig, y = self._ids(split)
        rows = (self.test.row if split == "test" and self.test is not None else self.train.row)[idx]
        path = ad.write_predictions(
            Path(out_dir) / f"{split}.parquet",
            {
                "id": rows,
                "prot_id": prot[idx],
                "lig_id": lig[idx],
                "y": y[idx],
                "affinity": outputs["affinity"],
                "scale": outputs["scale"],
                "prot_emb": outputs["prot_emb"],
                "lig_emb": outputs["lig_emb"],
            },
        )
        if np.isfinite(y[idx]).any():
            write_metrics(
                path,
                batch_size=self.exp.training.batch_size,
                train_mean=self.mu,
            )
        return path

    def write_submission(self, path: Path, test_outputs: dict[str, np.ndarray]) -> Path:
        from ...results.submission_files import write_submission_atomic
        from .results import submission_spec

        if self.test is None or len(test_outputs["affinity"]) != self.n_test():
            raise ValueError(f"submission needs all {self.n_test()} test pairs in file order")
        aff = np.asarray(test_outputs["affinity"], dtype=np.float64)
        if not np.isfinite(aff).all():  # no regression head: the pair's similarity is its score
            aff = am.pair_similarity(test_outputs["prot_emb"], test_outputs["lig_emb"])
        return write_submission_atomic(
            {"id": self.test.row, "affinity": aff},
            path,
            spec=submission_spec(),
            expected_ids=self.test.row,
            overwrite=True,
        )
