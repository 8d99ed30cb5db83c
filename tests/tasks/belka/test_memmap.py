"""In-process BELKA batch reader over prepared memmaps: deterministic order per (seed, epoch), resume from a
position, every index once per epoch, folds (random and building-block holdout), gather order."""
from __future__ import annotations

import json

import numpy as np
import pytest

from molremote.errors import DataError
from molremote.tasks.belka import synth as belka_synth
from molremote.tasks.belka.memmap import BatchReader, PreparedBelka, PreparedSplit
from molremote.tasks.belka.prepare import prepare_dir


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> PreparedBelka:
    raw = tmp_path_factory.mktemp("raw")
    belka_synth.write(raw / "train.parquet", 1000, split="train", seed=3)
    belka_synth.write(raw / "test.parquet", 200, split="test", seed=4)
    out = tmp_path_factory.mktemp("prep")
    prepare_dir(raw, out, progress=False)
    return PreparedBelka(out)


def idx_of(reader: BatchReader, epoch: int, start: int = 0) -> list[np.ndarray]:
    return [b.idx for b in reader.epoch(epoch, start)]


def test_every_index_once_per_epoch_and_order_depends_on_seed_and_epoch(data):
    sub = np.arange(0, 1000, 3)
    r = BatchReader(data.train, sub, batch_size=64, seed=7)
    e0 = idx_of(r, 0)
    assert len(e0) == len(r) == 6 and all(np.all(np.diff(b) > 0) for b in e0)  # sorted within a batch
    assert np.array_equal(np.sort(np.concatenate(e0)), sub)
    again = idx_of(BatchReader(data.train, sub, batch_size=64, seed=7), 0)
    assert all(np.array_equal(a, b) for a, b in zip(e0, again))
    e1 = idx_of(r, 1)
    assert np.array_equal(np.sort(np.concatenate(e1)), sub)
    assert not np.array_equal(np.concatenate(e0), np.concatenate(e1))
    other_seed = idx_of(BatchReader(data.train, sub, batch_size=64, seed=8), 0)
    assert not np.array_equal(np.concatenate(e0), np.concatenate(other_seed))
    dl = BatchReader(data.train, sub, batch_size=64, seed=7, drop_last=True)
    assert len(dl) == 5 and sum(len(b) for b in idx_of(dl, 0)) == 320


def test_resume_from_position_continues_the_same_epoch(data):
    r = BatchReader(data.train, np.arange(1000), batch_size=100, seed=1)
    full = list(r.epoch(2))
    pos = full[3].position
    assert pos == 400
    tail = list(BatchReader(data.train, np.arange(1000), batch_size=100, seed=1).epoch(2, start=pos))
    assert len(tail) == len(full) - 4
    for a, b in zip(full[4:], tail):
        assert np.array_equal(a.idx, b.idx) and np.array_equal(a.tokens, b.tokens)
    assert tail[-1].position == 1000
    with pytest.raises(ValueError):
        next(r.epoch(0, start=1001))


def test_batches_carry_the_rows_of_their_indices(data):
    r = BatchReader(data.train, np.arange(1000), batch_size=128, seed=0, release_bytes=1)  # release every batch
    for b in r.epoch(0):
        assert np.array_equal(b.tokens, np.asarray(data.train.tokens)[b.idx])
        assert np.array_equal(b.labels, np.asarray(data.train.labels)[b.idx])
    idx = np.array([900, 3, 512, 3])
    tokens, labels = data.train.gather(idx)  # unsorted, repeated: caller's order kept
    assert np.array_equal(tokens, data.train.tokens[idx]) and np.array_equal(labels, data.train.labels[idx])


def test_random_folds_partition_the_molecules(data):
    seen = []
    for k in range(4):
        tr, va = data.split(k, 4, "random", seed=0)
        assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 1000 and 240 <= len(va) <= 260
        seen.append(va)
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(1000))
    assert not np.array_equal(data.split(0, 4, "random", seed=1)[1], seen[0])


def test_building_block_holdout_keeps_held_blocks_out_of_training(data):
    bb = np.asarray(data.train.bb)
    held = np.flatnonzero(data.bb_fold(10, seed=0) == 2)
    tr, va = data.split(2, 10, "building_block", seed=0)
    assert len(tr) + len(va) == 1000 and len(va) > 0
    assert not np.isin(bb[tr], held).any()
    assert np.isin(bb[va], held).any(1).all()
    share = data.share_mask(tr, va)
    assert not share.any()  # every validation molecule has a building block unseen in training
    rtr, rva = data.split(0, 5, "random", seed=0)
    assert data.share_mask(rtr, rva).mean() > 0.2  # small pools here: many blocks occur once
    with pytest.raises(DataError, match="unknown fold scheme"):
        data.split(0, 5, "scaffold")


def test_wide_arrays_view_and_bad_folders(data, tmp_path):
    w = data.test.wide_arrays()
    assert w["labels"].dtype == np.int8 and (w["labels"] == -1).all()
    assert w["ids"].shape == (200, 3) and (w["ids"] >= 0).any(1).all()
    with pytest.raises(DataError, match="meta.json not found"):
        PreparedBelka(tmp_path)
    d = tmp_path / "split"
    d.mkdir()
    (d / "progress.json").write_text("{}")
    with pytest.raises(DataError, match="incomplete"):
        PreparedSplit(d)
    src = data.train.dir
    meta = json.loads((src / "meta.json").read_text())
    meta["arrays"]["tokens.u8"]["shape"][0] += 1
    for f in src.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="tokens.u8: .* bytes, expected"):
        PreparedSplit(d)
