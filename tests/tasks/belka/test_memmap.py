"""A prepared BELKA folder read back as memory maps: zero-copy wide arrays, incomplete or damaged folders
refused. (Folds are BelkaTask's: tests/tasks/belka/test_task.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from molremote.errors import DataError
from molremote.tasks.belka import synth as belka_synth
from molremote.tasks.belka.memmap import PreparedBelka, PreparedSplit
from molremote.tasks.belka.prepare import prepare_dir


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> PreparedBelka:
    raw = tmp_path_factory.mktemp("raw")
    belka_synth.write(raw / "train.parquet", 1000, split="train", seed=3)
    belka_synth.write(raw / "test.parquet", 200, split="test", seed=4)
    out = tmp_path_factory.mktemp("prep")
    prepare_dir(raw, out, progress=False)
    return PreparedBelka(out)


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
