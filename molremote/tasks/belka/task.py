"""BELKA (Kaggle `leash-BELKA`): small molecules x 3 proteins, binds or not.

The competition files are LONG: one row per (molecule, protein) with `id, buildingblock{1,2,3}_smiles,
molecule_smiles, protein_name, binds`. Models train on the WIDE form: one row per molecule, one label per
protein (missing where that protein row is absent: not every test molecule is paired with all 3 proteins),
and predictions are mapped back to row ids by protein.

Data: `data.root` unset reads the shipped demo. A folder with `train.parquet`/`test.parquet` (as downloaded)
is read in memory when small: record batches, runs of equal `molecule_smiles` become one molecule, SMILES
tokenized per batch by the vectorised `tokens.py`, and molecules whose rows are not contiguous are merged
by a 64-bit hash of their SMILES. Above IN_MEMORY_MAX_ROWS rows (the real train file has ~295M) the files
are prepared once by `prepare.py` into memory-mapped arrays under `$MOLREMOTE_CACHE/belka` (default
`<project>/.molremote/cache/belka`), keyed by file size and mtime; `data.root` may also point at a folder
prepared beforehand (`python -m molremote.tasks.belka.prepare RAW_DIR OUT_DIR`, it has a meta.json).
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
from typing import Any, Callable

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
from .results import SUBMISSION, BelkaResults

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
    hashes: np.ndarray | None = None  # (n,) uint64 SMILES hashes, only while reading

    def __len__(self) -> int:
        return len(self.tokens)


# ------------------------------------------------------------------------------------------- reading
class _Chunks:
    """Per-molecule arrays grown batch by batch; the last molecule stays writable (it may continue)."""

    def __init__(self, n_prot: int):
        self.n_prot = n_prot
        self.ids: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.bb: list[np.ndarray] = []
        self.hashes: list[np.ndarray] = []
        self.n = 0
        self.last_row: tuple[np.ndarray, np.ndarray] = (np.empty((0, n_prot), np.int64), np.empty((0, n_prot), np.int8))

    def add(self, k: int, bb: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.full((k, self.n_prot), ABSENT, np.int64)
        labels = np.full((k, self.n_prot), ABSENT, np.int8)
        self.ids.append(ids), self.labels.append(labels), self.bb.append(bb), self.hashes.append(hashes)
        self.n += k
        return ids, labels



def _cat(parts: list[np.ndarray], shape_tail: tuple[int, ...], dtype: Any) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, *shape_tail), dtype)


def read_long(path: Path, *, proteins: list[str], bb_vocab: dict[str, int], max_length: int,
              on_unknown: str, labelled: bool, token_sink: Callable[[np.ndarray], None]) -> Wide:
    """Stream one competition parquet file into the wide form. Tokens go to `token_sink` batch by batch
    (the returned Wide has an empty `tokens`; the caller assembles them). `bb_vocab` is extended in place."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from .tokens import TokenizeError, encode

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # not parquet, truncated, ...
        raise DataError(f"{path}: cannot read as parquet ({type(e).__name__}: {e})") from None
    names = pf.schema_arrow.names
    need = ["id", *BB_COLS, "molecule_smiles", "protein_name"] + (["binds"] if labelled else [])
    missing = [c for c in need if c not in names]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {names}. Expected the leash-BELKA layout: "
                        f"{', '.join(need)}")
    n_prot = len(proteins)
    value_set = pa.array(list(PROTEINS))
    selected = np.array([proteins.index(p) if p in proteins else -1 for p in PROTEINS])
    chunks = _Chunks(n_prot)
    tokens_written = 0
    prev_key: str | None = None
    row0 = 0
    for batch in pf.iter_batches(batch_size=READ_BATCH_ROWS, columns=need):
        n = batch.num_rows
        if n == 0:
            continue
        col = {c: batch.column(c) for c in need}
        for c in need:
            if col[c].null_count:
                r = row0 + int(np.flatnonzero(col[c].is_null().to_numpy(zero_copy_only=False))[0])
                raise DataError(f"{path}: row {r}: missing value in column '{c}'")
        mol = col["molecule_smiles"]
        new = np.empty(n, bool)
        new[0] = prev_key is None or mol[0].as_py() != prev_key
        if n > 1:
            new[1:] = pc.not_equal(mol.slice(1), mol.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        prev_key = mol[n - 1].as_py()
        starts = np.flatnonzero(new)
        local = np.cumsum(new) - 1  # molecule index within this batch's new molecules; -1 = continues
        new_smiles = mol.take(pa.array(starts))
        try:
            toks = encode(new_smiles, max_length, on_unknown=on_unknown)
        except TokenizeError as e:
            r = row0 + int(starts[e.row])
            raise DataError(f"{path}: row {r} (id {col['id'][int(starts[e.row])].as_py()}): {e.args[0].split(': ', 1)[1]}"
                            f" (BELKA tokenizer, max_length={max_length}; task.unknown_chars='skip' drops unknown "
                            "characters)") from None
        token_sink(toks)
        tokens_written += len(toks)
        bb = np.empty((len(starts), 3), np.int32)
        for j, c in enumerate(BB_COLS):
            enc = pc.dictionary_encode(col[c].take(pa.array(starts)))
            local_map = np.array([bb_vocab.setdefault(s, len(bb_vocab)) for s in enc.dictionary.to_pylist()],
                                 dtype=np.int32)
            bb[:, j] = local_map[enc.indices.to_numpy(zero_copy_only=False)] if len(local_map) else 0
        hashes = pd.util.hash_array(new_smiles.to_numpy(zero_copy_only=False), categorize=False)
        ids_new, lab_new = chunks.add(len(starts), bb, hashes)

        pidx = pc.fill_null(pc.index_in(col["protein_name"], value_set=value_set), -1).to_numpy(
            zero_copy_only=False).astype(np.int64)
        if (pidx < 0).any():
            r = int(np.flatnonzero(pidx < 0)[0])
            raise DataError(f"{path}: row {row0 + r}: protein_name {col['protein_name'][r].as_py()!r} is not one of "
                            f"{list(PROTEINS)}")
        p = selected[pidx]
        keep = p >= 0  # rows of proteins the experiment does not model are skipped
        ids_col = col["id"].to_numpy(zero_copy_only=False).astype(np.int64)
        lab_col = (col["binds"].to_numpy(zero_copy_only=False).astype(np.int64) if labelled
                   else np.full(n, ABSENT, np.int64))
        if labelled:
            bad = keep & ~np.isin(lab_col, (0, 1))
            if bad.any():
                r = int(np.flatnonzero(bad)[0])
                raise DataError(f"{path}: row {row0 + r}: binds={int(lab_col[r])}, expected 0 or 1")
        key = local[keep] * n_prot + p[keep]
        _, first = np.unique(key, return_index=True)
        if len(first) < len(key):
            later = np.ones(len(key), bool)
            later[first] = False
            r = int(np.flatnonzero(keep)[np.flatnonzero(later)[0]])
            raise DataError(f"{path}: row {row0 + r}: a second row for molecule {mol[r].as_py()!r} and protein "
                            f"{col['protein_name'][r].as_py()!r}")
        cont = keep & (local < 0)
        if cont.any():  # rows continuing the previous batch's last molecule
            ids_last, lab_last = chunks.last_row
            if (ids_last[0, p[cont]] != ABSENT).any():
                r = int(np.flatnonzero(cont)[0])
                raise DataError(f"{path}: row {row0 + r}: a second row for molecule {mol[r].as_py()!r}")
            ids_last[0, p[cont]] = ids_col[cont]
            lab_last[0, p[cont]] = lab_col[cont]
        sel = keep & (local >= 0)
        ids_new[local[sel], p[sel]] = ids_col[sel]
        lab_new[local[sel], p[sel]] = lab_col[sel]
        if len(ids_new):
            chunks.last_row = (ids_new[-1:], lab_new[-1:])
        row0 += n

    wide = Wide(tokens=np.zeros((0, max_length), np.uint8), ids=_cat(chunks.ids, (n_prot,), np.int64),
                labels=_cat(chunks.labels, (n_prot,), np.int8), bb=_cat(chunks.bb, (3,), np.int32))
    wide.hashes = _cat(chunks.hashes, (), np.uint64)
    return wide


def _merge_duplicates(w: Wide, path: Path) -> np.ndarray | None:
    """Molecules whose rows were not contiguous appear twice: merge them (first occurrence kept). Returns the
    kept molecule indices, or None when there was nothing to merge."""
    hashes, w.hashes = w.hashes, None
    uniq, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    if len(uniq) == len(hashes):
        return None
    order = np.argsort(first)  # keep file order of first occurrences
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    target = rank[inverse]
    present = (w.ids != ABSENT).astype(np.int64)
    count = np.zeros((len(uniq), w.ids.shape[1]), np.int64)
    np.add.at(count, target, present)
    if (count > 1).any():
        m = int(np.flatnonzero((count > 1).any(axis=1))[0])
        raise DataError(f"{path}: molecule number {m} has two rows for the same protein")
    ids = np.full((len(uniq), w.ids.shape[1]), ABSENT, np.int64)
    labels = np.full((len(uniq), w.ids.shape[1]), ABSENT, np.int8)
    np.maximum.at(ids, target, w.ids)
    np.maximum.at(labels, target, w.labels)
    keep = first[order]
    w.ids, w.labels, w.bb = ids, labels, w.bb[keep]
    return keep


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
    name = BelkaResults.name
    metric_name = BelkaResults.metric_name
    greater_is_better = BelkaResults.greater_is_better
    data_help = ("BELKA data: run `kaggle competitions download -c leash-BELKA`, unzip it and put train.parquet "
                 "and test.parquet in the folder named by the experiment's data.root (a relative path is taken "
                 "from the project root), or point data.root at a folder prepared with `python -m "
                 "molremote.tasks.belka.prepare RAW_DIR OUT_DIR`; leave data.root unset for the small demo data "
                 "shipped with molremote.")
    SCHEMES = ("random", "building_block")

    def __init__(self, exp: Any):
        super().__init__(exp)
        self.proteins: list[str] = list(self.params.proteins)
        unknown = [p for p in self.proteins if p not in PROTEINS]
        if unknown or not self.proteins:
            raise ExperimentError(f"proteins {unknown or '[]'} not among {list(PROTEINS)}", file=exp.file,
                                  field="task.proteins")
        if exp.folds.scheme not in self.SCHEMES:
            raise ExperimentError(f"unknown fold scheme {exp.folds.scheme!r} for task belka; one of "
                                  f"{list(self.SCHEMES)}", file=exp.file, field="folds.scheme")
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

                if self.proteins != list(PROTEINS):
                    raise ExperimentError(f"{train_p} is prepared as memory maps with all of {list(PROTEINS)}; "
                                          "task.proteins cannot select a subset there", field="task.proteins")
                out = cache_root() / _cache_key(train_p, p.max_length, p.unknown_chars)
                print(f"belka: preparing {n_rows:,} rows of {root} as memory maps in {out} (once; resumable)",
                      flush=True)
                m = prepare_dir(root, out, max_length=p.max_length, on_unknown=p.unknown_chars)
                if m.get("status") == "incomplete":  # pragma: no cover - only with a time box
                    raise DataError(f"preparation of {root} in {out} is incomplete: run again to resume")
                self._use_prepared(PreparedBelka(out), out)
            else:
                vocab: dict[str, int] = {}
                self.train = self._read(train_p, vocab, labelled=True)
                self.test = self._read(test_p, vocab, labelled=False)
                self.bb_names = list(vocab)
        if not len(self.train):  # type: ignore[arg-type]
            raise DataError(f"{root}: no training molecules")
        self._train_seen = np.zeros(len(self.bb_names), bool)
        self._train_seen[np.unique(self.train.bb)] = True  # type: ignore[union-attr]

    def _use_prepared(self, prep: Any, root: Path) -> None:
        if prep.test is None:
            raise DataError(f"{root}/meta.json lists no test split: prepare test.parquet too "
                            "(`python -m molremote.tasks.belka.prepare RAW_DIR OUT_DIR`)")
        if list(prep.proteins) != self.proteins:
            raise ExperimentError(f"{root} is prepared for proteins {prep.proteins}, the experiment asks for "
                                  f"{self.proteins}", field="task.proteins")
        if prep.train.max_length != self.params.max_length:
            raise ExperimentError(f"{root} is prepared with max_length {prep.train.max_length}, the experiment "
                                  f"asks for {self.params.max_length}", field="task.max_length")
        self.train, self.test = Wide(**prep.train.wide_arrays()), Wide(**prep.test.wide_arrays())
        self.bb_names = list(prep.test.bb_vocab)  # the test vocabulary extends the train one

    def _read(self, path: Path, vocab: dict[str, int], *, labelled: bool) -> Wide:
        p = self.params
        parts: list[np.ndarray] = []
        w = read_long(path, proteins=self.proteins, bb_vocab=vocab, max_length=p.max_length,
                      on_unknown=p.unknown_chars, labelled=labelled, token_sink=parts.append)
        tokens = _cat(parts, (p.max_length,), np.uint8)
        keep = _merge_duplicates(w, path)
        w.tokens = tokens if keep is None else tokens[keep]
        return w

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
            raise ExperimentError(f"building_block folds need at least n_folds={k} distinct building blocks 1, "
                                  f"the data has {len(bb1)}", file=self.exp.file, field="folds.n_folds")
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
        """"share"/"nonshare" per validation molecule: are all its building blocks in the fold's training
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
                seen[train.bb[lo:lo + chunk][rest[lo:lo + chunk]]] = True
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
        out = {"row": mol, "id": ids[mol, prot], "protein_name": np.asarray(self.proteins)[prot],
               "binds_true": w.labels[idx][mol, prot]}
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
