"""BELKA (Kaggle `leash-BELKA`): small molecules x 3 proteins, binds or not.

The competition files are LONG: one row per (molecule, protein) with `id, buildingblock{1,2,3}_smiles,
molecule_smiles, protein_name, binds`. Models train on the WIDE form: one row per molecule, one label per
protein (missing where that protein row is absent: not every test molecule is paired with all 3 proteins),
and predictions are mapped back to row ids by protein.

Data: `data.root` unset reads the shipped demo. A folder with `train.parquet`/`test.parquet` (as downloaded)
is read in memory when small, by the one BELKA reader (`reader.py`, shared with the full-scale preparation:
same checks, same error wording, same molecules and building-block ids; rows of one molecule must be
adjacent, as in the competition files). Above IN_MEMORY_MAX_ROWS rows (the real train file has ~295M) the
files are prepared once by `prepare.py` into memory-mapped arrays under `$MOLREMOTE_CACHE/belka` (default
`<project>/.molremote/cache/belka`), keyed by file size and mtime; `data.root` may also point at a folder
prepared beforehand (`python -m molremote.tasks.belka.prepare RAW_DIR OUT_DIR`, it has a meta.json).
Every protein is read; `task.proteins` selects the columns the experiment models.
Either way the task sees the same `Wide` arrays (memory maps for prepared data: flat memory).

Folds (exp.folds.scheme): "random" (molecules dealt round-robin after a seeded shuffle) and
"building_block": every distinct building block 1 (the amino-acid position, the smallest pool) is dealt to
a group; a molecule's fold is its building block 1's group, so validation molecules carry a building block 1
never seen in that fold's training rows (out-of-domain, like most of the competition's test set).

Metric (metric.belka_ap): AP per (protein x split_group) cell, mean over cells. For validation rows the
split_group is "share" when all three building blocks occur in the fold's training rows (every training
molecule not in `valid_idx`), else "nonshare"; for test rows, when they occur in train.parquet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import DataError, ExperimentError
from ...fsutil import atomic_path
from ..base import Task
from .metric import (
    NONSHARE,
    PROTEINS,
    SHARE,
    belka_ap,
    check_probabilities,
    split_groups,
)
from .params import BelkaParams
from .results import SUBMISSION, BelkaResults

if TYPE_CHECKING:  # pragma: no cover
    from ...experiments import Experiment

BB_COLS = ("buildingblock1_smiles", "buildingblock2_smiles", "buildingblock3_smiles")
READ_BATCH_ROWS = 1 << 20  # rows per parquet record batch: ~150 MB of strings, bounded memory
ABSENT = -1


@dataclass
class Wide:
    """One row per molecule. ids/labels are -1 where the (molecule, protein) row is absent."""

    tokens: np.ndarray  # (n, max_length) uint8
    ids: np.ndarray  # (n, n_proteins) int64
    labels: np.ndarray  # (n, n_proteins) int8: 0/1, -1 absent (test: -1 everywhere)
    bb: np.ndarray  # (n, 3) int32 building-block ids (one vocabulary for all three positions)

    def __len__(self) -> int:
        return len(self.tokens)

    def select(self, columns: list[int]) -> Wide:
        """The protein columns an experiment models (task.proteins), in its order; self when it is all of
        them in file order (no copy: prepared data stays memory-mapped)."""
        if columns == list(range(self.ids.shape[1])):
            return self
        return Wide(
            tokens=self.tokens,
            ids=np.ascontiguousarray(self.ids[:, columns]),
            labels=np.ascontiguousarray(self.labels[:, columns]),
            bb=self.bb,
        )


# ------------------------------------------------------------------------------------------- reading
def read_long(path: Path, *, vocab: list[str], max_length: int, on_unknown: str, labelled: bool) -> Wide:
    """One (small) competition parquet file in memory, in the wide form, every protein's column (PROTEINS
    order). Read with the same reader as the full-scale preparation (reader.py: same checks, same errors,
    same molecules and building-block ids); `vocab` is extended in place. As the whole file is here, a
    molecule whose rows recur after other molecules is refused wherever it recurs (prepare can only see
    it within a record batch and across a batch boundary)."""
    import pandas as pd

    from .reader import LongReader, not_adjacent_message

    parts: dict[str, list[np.ndarray]] = {"tokens": [], "bb": [], "labels": [], "ids": [], "rows": [], "hash": []}
    reader = LongReader(
        path, labelled=labelled, max_length=max_length, on_unknown=on_unknown, vocab=vocab, batch_rows=READ_BATCH_ROWS
    )
    with reader:
        for blocks in reader:
            for blk in blocks:
                for k in ("tokens", "bb", "labels", "ids", "rows"):
                    parts[k].append(np.array(getattr(blk, k)))  # copies: the reader reuses its token buffer
                parts["hash"].append(pd.util.hash_array(blk.smiles.to_numpy(zero_copy_only=False), categorize=False))
    n_prot = len(PROTEINS)
    hashes = _cat(parts["hash"], (), np.uint64)
    ids = _cat(parts["ids"], (n_prot,), np.int64)
    _, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    if (counts > 1).any():  # a molecule recurring after other molecules (a hash collision would be refused too)
        h = hashes[first[np.flatnonzero(counts > 1)[0]]]
        a, b = np.flatnonzero(hashes == h)[:2]
        rows = _cat(parts["rows"], (), np.int64)
        from .tokens import decode

        smiles = decode(_cat(parts["tokens"], (max_length,), np.uint8)[[a]])[0]
        rid = int(ids[b][ids[b] >= 0].min())
        raise DataError(
            f"{path}: row {int(rows[b])} (id {rid}): {not_adjacent_message(smiles, int(ids[a][ids[a] >= 0].min()))}"
        )
    return Wide(
        tokens=_cat(parts["tokens"], (max_length,), np.uint8),
        ids=ids,
        labels=_cat(parts["labels"], (n_prot,), np.uint8).view(np.int8),
        bb=_cat(parts["bb"], (3,), np.int32),
    )


def _cat(parts: list[np.ndarray], shape_tail: tuple[int, ...], dtype: Any) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, *shape_tail), dtype)


# --------------------------------------------------------------------------------------------- cache
IN_MEMORY_MAX_ROWS = 5_000_000  # above this a raw parquet is prepared once as memory-mapped arrays (cached)


def cache_root() -> Path:
    from ...project import project_root

    env = os.environ.get("MOLREMOTE_CACHE")
    return (Path(env) if env else project_root() / ".molremote" / "cache") / "belka"


def _cache_key(train: Path, max_length: int, on_unknown: str) -> str:
    st = train.stat()
    return f"{train.parent.name or 'data'}-{st.st_size}-{st.st_mtime_ns}-L{max_length}-{on_unknown}"


# ---------------------------------------------------------------------------------------------- task
class BelkaTask(Task):
    params: BelkaParams
    name = BelkaResults.name
    metric_name = BelkaResults.metric_name
    greater_is_better = BelkaResults.greater_is_better
    data_help = (
        "BELKA data: run `kaggle competitions download -c leash-BELKA`, unzip it and put train.parquet "
        "and test.parquet in the folder named by the experiment's data.root (a relative path is taken "
        "from the project root), or point data.root at a folder prepared with `python -m "
        "molremote.tasks.belka.prepare RAW_DIR OUT_DIR`; leave data.root unset for the small demo data "
        "shipped with molremote."
    )
    SCHEMES = ("random", "building_block")

    def __init__(self, exp: Experiment):
        super().__init__(exp)
        self.proteins: list[str] = list(self.params.proteins)
        unknown = [p for p in self.proteins if p not in PROTEINS]
        if unknown or not self.proteins:
            raise ExperimentError(
                f"proteins {unknown or '[]'} not among {list(PROTEINS)}", file=exp.file, field="task.proteins"
            )
        self.columns = [PROTEINS.index(p) for p in self.proteins]  # of the wide arrays (reader.PROTEINS order)
        if exp.folds.scheme not in self.SCHEMES:
            raise ExperimentError(
                f"unknown fold scheme {exp.folds.scheme!r} for task belka; one of {list(self.SCHEMES)}",
                file=exp.file,
                field="folds.scheme",
            )
        self.train: Wide | None = None
        self.test: Wide | None = None
        self.bb_names: list[str] = []
        self._seen_cache: tuple[tuple, np.ndarray] | None = None

    # ------------------------------------------------------------------ data
    def load(self) -> None:
        """Raw parquet (train/test.parquet, read in memory; above IN_MEMORY_MAX_ROWS rows prepared once
        into a cache folder by prepare.py) or a prepared folder (meta.json, memmap.py)."""
        if self.train is not None:
            return
        from .memmap import PreparedBelka

        root, p = self.data_dir(), self.params
        if self.exp.data.root is not None and PreparedBelka.is_prepared(root):
            self._use_prepared(PreparedBelka(root), root)
        else:
            train_p, test_p = self.require("train.parquet", "test.parquet")
            import pyarrow.parquet as pq

            try:
                n_rows = pq.ParquetFile(train_p).metadata.num_rows
            except Exception as e:
                raise DataError(f"{train_p}: cannot read as parquet ({type(e).__name__}: {e})") from None
            if n_rows > IN_MEMORY_MAX_ROWS:
                from .prepare import prepare_dir

                out = cache_root() / _cache_key(train_p, p.max_length, p.unknown_chars)
                print(
                    f"belka: preparing {n_rows:,} rows of {root} as memory maps in {out} (once; resumable)", flush=True
                )
                m = prepare_dir(root, out, max_length=p.max_length, on_unknown=p.unknown_chars)
                if m.get("status") == "incomplete":  # pragma: no cover - only with a time box
                    raise DataError(f"preparation of {root} in {out} is incomplete: run again to resume")
                self._use_prepared(PreparedBelka(out), out)
            else:
                vocab: list[str] = []
                self.train = self._read(train_p, vocab, labelled=True)
                self.test = self._read(test_p, vocab, labelled=False)
                self.bb_names = vocab
        if not len(self.train):  # type: ignore[arg-type]
            raise DataError(f"{root}: no training molecules")
        self._train_seen = np.zeros(len(self.bb_names), bool)
        self._train_seen[np.unique(self.train.bb)] = True  # type: ignore[union-attr]

    def _use_prepared(self, prep: Any, root: Path) -> None:
        if prep.test is None:
            raise DataError(
                f"{root}/meta.json lists no test split: prepare test.parquet too "
                "(`python -m molremote.tasks.belka.prepare RAW_DIR OUT_DIR`)"
            )
        if not set(self.proteins) <= set(prep.proteins):
            raise ExperimentError(
                f"{root} is prepared for proteins {prep.proteins}, the experiment asks for {self.proteins}",
                field="task.proteins",
            )
        columns = [list(prep.proteins).index(p) for p in self.proteins]
        if prep.train.max_length != self.params.max_length:
            raise ExperimentError(
                f"{root} is prepared with max_length {prep.train.max_length}, the experiment "
                f"asks for {self.params.max_length}",
                field="task.max_length",
            )
        self.train = Wide(**prep.train.wide_arrays()).select(columns)
        self.test = Wide(**prep.test.wide_arrays()).select(columns)
        self.bb_names = list(prep.test.bb_vocab)  # the test vocabulary extends the train one

    def _read(self, path: Path, vocab: list[str], *, labelled: bool) -> Wide:
        p = self.params
        return read_long(
            path, vocab=vocab, max_length=p.max_length, on_unknown=p.unknown_chars, labelled=labelled
        ).select(self.columns)

    def _need(self) -> tuple[Wide, Wide]:
        if self.train is None or self.test is None:
            self.load()
        return self.train, self.test  # type: ignore[return-value]

    def n_train(self) -> int:
        return len(self._need()[0])

    def n_test(self) -> int:
        return len(self._need()[1])

    def fold_assignment(self) -> np.ndarray:
        train, _ = self._need()
        k, rng = self.exp.folds.n_folds, np.random.default_rng(self.exp.folds.seed)
        n = len(train)
        if self.exp.folds.scheme == "random":
            f = np.empty(n, np.int64)
            f[rng.permutation(n)] = np.arange(n) % k
            return f
        bb1 = np.unique(train.bb[:, 0])
        if len(bb1) < k:
            raise ExperimentError(
                f"building_block folds need at least n_folds={k} distinct building blocks 1, the data has {len(bb1)}",
                file=self.exp.file,
                field="folds.n_folds",
            )
        group = np.zeros(len(self.bb_names), np.int64)
        group[bb1[rng.permutation(len(bb1))]] = np.arange(len(bb1)) % k
        return group[train.bb[:, 0]]

    def model_info(self) -> dict[str, Any]:
        from .tokens import VOCAB_SIZE

        return {"vocab_size": VOCAB_SIZE, "max_length": self.params.max_length, "n_outputs": len(self.proteins)}

    # ------------------------------------------------------------------ torch side
    def batch(self, split: str, idx: np.ndarray, device: Any) -> dict[str, Any]:
        import torch

        train, test = self._need()
        w = train if split == "train" else test
        idx = np.asarray(idx)
        # uint8 over the bus (8x less than int64), widened on the device
        tokens = torch.from_numpy(np.ascontiguousarray(w.tokens[idx])).to(device, non_blocking=True).long()
        out = {"tokens": tokens}
        if split == "train":
            lab = torch.from_numpy(np.ascontiguousarray(w.labels[idx])).to(device)
            out["mask"] = (lab >= 0).float()
            out["y"] = lab.clamp(min=0).float()
        return out

    def loss(self, model: Any, batch: dict[str, Any]) -> Any:
        import torch.nn.functional as F

        logits = model(batch["tokens"]).float()
        per = F.binary_cross_entropy_with_logits(logits, batch["y"], reduction="none") * batch["mask"]
        return per.sum() / batch["mask"].sum().clamp(min=1.0)  # mean over present (molecule, protein) cells

    def predict(self, model: Any, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        import torch

        with torch.no_grad():
            probs = torch.sigmoid(model(batch["tokens"]).float())
        return {"probs": probs.cpu().numpy()}

    # ------------------------------------------------------------------ metric and files
    def valid_split_groups(self, valid_idx: np.ndarray) -> np.ndarray:
        """ "share"/"nonshare" per validation molecule: are all its building blocks in the fold's training
        rows (every training molecule not in valid_idx)?"""
        train, _ = self._need()
        valid_idx = np.asarray(valid_idx)
        key = (len(valid_idx), int(valid_idx[:1].sum()), int(valid_idx[-1:].sum()), int(valid_idx.sum()))
        if self._seen_cache is None or self._seen_cache[0] != key:
            rest = np.ones(len(train), bool)
            rest[valid_idx] = False
            seen = np.zeros(len(self.bb_names), bool)
            chunk = 1 << 22  # chunked gathers: flat memory over 98M memory-mapped molecules
            for lo in range(0, len(train), chunk):
                seen[train.bb[lo : lo + chunk][rest[lo : lo + chunk]]] = True
            self._seen_cache = (key, seen)
        return split_groups(train.bb[valid_idx], self._seen_cache[1])

    def test_split_groups(self) -> np.ndarray:
        _, test = self._need()
        return split_groups(test.bb, self._train_seen)

    def _long(self, w: Wide, idx: np.ndarray, probs: np.ndarray | None) -> dict[str, np.ndarray]:
        """Long rows (molecule-major, then protein) for the present cells of molecules idx."""
        idx = np.asarray(idx)
        ids = w.ids[idx]
        present = ids != ABSENT
        mol, prot = np.nonzero(present)
        out = {
            "row": mol,
            "id": ids[mol, prot],
            "protein_name": np.asarray(self.proteins)[prot],
            "binds_true": w.labels[idx][mol, prot],
        }
        if probs is not None:
            probs = np.asarray(probs)
            if probs.shape != (len(idx), len(self.proteins)):
                raise DataError(f"predictions have shape {probs.shape}, expected {(len(idx), len(self.proteins))}")
            out["binds"] = probs[mol, prot].astype(np.float64)
        return out

    def score(self, valid_idx: np.ndarray, outputs: dict[str, np.ndarray]) -> float:
        train, _ = self._need()
        rows = self._long(train, valid_idx, outputs["probs"])
        groups = self.valid_split_groups(valid_idx)[rows["row"]]
        return belka_ap(rows["binds_true"], rows["binds"], rows["protein_name"], groups, what="validation predictions")

    def baseline_score(self, valid_idx: np.ndarray) -> float | None:
        """A constant predictor (e.g. the training prior): inside a cell every score ties, so each cell's AP
        is its positive rate."""
        return self.score(valid_idx, {"probs": np.full((len(valid_idx), len(self.proteins)), 0.5)})

    def write_predictions(self, out_dir: Path, split: str, idx: np.ndarray, outputs: dict[str, np.ndarray]) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        train, test = self._need()
        w = train if split == "valid" else test
        rows = self._long(w, idx, outputs["probs"])
        check_probabilities(rows["binds"], f"{split} predictions")
        cols: dict[str, Any] = {"id": rows["id"], "protein_name": rows["protein_name"], "binds": rows["binds"]}
        if split == "valid":
            cols["binds_true"] = rows["binds_true"].astype(np.int8)
            cols["split_group"] = self.valid_split_groups(idx)[rows["row"]]
        order = np.argsort(cols["id"], kind="stable")
        table = pa.table({k: np.asarray(v)[order] for k, v in cols.items()})
        path = Path(out_dir) / f"{split}.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        return path

    def write_submission(self, path: Path, test_outputs: dict[str, np.ndarray]) -> Path:
        from ...results.submission_files import write_submission_atomic

        _, test = self._need()
        rows = self._long(test, np.arange(len(test)), test_outputs["probs"])
        check_probabilities(rows["binds"], "test predictions")
        order = np.argsort(rows["id"], kind="stable")
        data = {"id": rows["id"][order], "binds": rows["binds"][order]}
        return write_submission_atomic(data, path, spec=SUBMISSION, expected_ids=data["id"], overwrite=True)


__all__ = ["BelkaTask", "Wide", "read_long", "SHARE", "NONSHARE"]
