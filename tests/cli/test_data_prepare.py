"""`molremote data prepare --task belka`: the CLI over tasks/belka/prepare.py; a prepared folder feeds the task the
same molecules, labels, tokens and folds as the parquet files it came from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from molremote.experiments import Registry, apply_overrides
from molremote.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "molremote" / "demo_data" / "belka"


def molremote(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "molremote", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_prepare_then_train_inputs_match_the_parquet(tmp_path):
    out = tmp_path / "prepared"
    r = molremote("data", "prepare", "--task", "belka", "--input", str(DEMO / "train.parquet"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "train: 10,000 molecules (30,000 rows)" in r.stdout and "test: 2,000 molecules (4,825 rows)" in r.stdout
    meta = json.loads((out / "meta.json").read_text())
    assert set(meta["splits"]) == {"train", "test"}

    exp = Registry(ROOT / "experiments").resolve(1)
    direct = get_task(exp)
    prepared = get_task(apply_overrides(exp, [f"data.root={out}"]))
    direct.load()
    prepared.load()
    assert direct.n_train() == prepared.n_train() == 10_000 and direct.n_test() == prepared.n_test() == 2_000
    np.testing.assert_array_equal(direct.fold_assignment(), prepared.fold_assignment())
    idx = np.arange(0, 10_000, 7)
    for split in ("train", "test"):
        rows = idx if split == "train" else idx[idx < 2_000]
        a, b = direct.batch(split, rows, "cpu"), prepared.batch(split, rows, "cpu")
        assert a.keys() == b.keys() and "tokens" in a
        for k in a:
            np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=f"{split} {k}")


def test_prepare_refuses_missing_input_and_other_tasks(tmp_path):
    r = molremote(
        "data", "prepare", "--task", "belka", "--input", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "o")
    )
    assert r.returncode == 3 and "nope.parquet not found" in r.stderr
    r = molremote("data", "prepare", "--task", "moa", "--input", str(DEMO), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "belka" in r.stderr
    assert not (tmp_path / "o").exists()
