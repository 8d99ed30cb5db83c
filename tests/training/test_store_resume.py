"""Results follow the experiment: a run stopped at --max-time on one machine resumes from the store on
another (a fresh project folder), and its results pull back byte-identical. Real huggingface_hub client
against the loopback Hub server; the local-folder store too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_experiment
from tests.servers.hub_server import HubServer
from tests.training.test_trainer import TOY, assert_same_weights, stable_metrics


def machine(tmp_path: Path, name: str) -> Path:
    """A fresh project folder standing for another machine with the same experiments."""
    p = tmp_path / name
    (p / "experiments").mkdir(parents=True)
    write_experiment(p, "0001_toy.py", TOY.format(epochs=2, task=', "sleep_s": 0.03', training='"batch_size": 32'))
    return p


def cli(project: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    e = {
        **os.environ,
        "MOLREMOTE_PROJECT": str(project),
        "PYTHONPATH": str(ROOT),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "tests.training.toy", *args],
        cwd=ROOT,
        env=e,
        capture_output=True,
        text=True,
        timeout=300,
    )


def tree(d: Path) -> dict[str, bytes]:
    """The run's files, without each machine's own bookkeeping (its lock file, what it last synced)."""
    return {
        p.relative_to(d).as_posix(): p.read_bytes()
        for p in sorted(d.rglob("*"))
        if p.is_file() and p.name not in (".lock", ".synced.json")
    }


def _resume_elsewhere(tmp_path: Path, env: dict) -> None:
    a, b, c = machine(tmp_path, "a"), machine(tmp_path, "b"), machine(tmp_path, "c")
    ref = cli(machine(tmp_path, "ref"), {"MOLREMOTE_STORE": ""}, "train", "-e", "1")
    assert ref.returncode == 0, ref.stderr
    ref_dir = Path(ref.stdout.strip().splitlines()[-1])

    first = cli(a, env, "train", "-e", "1", "--max-time", "1.5s")
    assert first.returncode == 75, first.stderr
    key = "/".join(Path(first.stdout.strip().splitlines()[-1]).parts[-2:])
    # machine b has no local run folder: it resumes from the store's checkpoint
    second = cli(b, env, "train", "-e", "1")
    assert second.returncode == 0, second.stderr
    assert "restored" in second.stderr and "resuming" in second.stderr
    run_b = b / "runs" / key
    m = json.loads((run_b / "manifest.json").read_text())
    first_m = json.loads((a / "runs" / key / "manifest.json").read_text())
    assert m["status"] == "complete" and m["run_uid"] == first_m["run_uid"] and len(m["sessions"]) == 2
    assert_same_weights(run_b / "checkpoints/best.pt", ref_dir / "checkpoints/best.pt")
    assert stable_metrics(run_b) == stable_metrics(ref_dir)
    # machine c pulls the finished run: byte-identical to what b has
    pulled = cli(c, env, "pull", "-e", "1")
    assert pulled.returncode == 0, pulled.stderr
    tb, tc = tree(run_b), tree(c / "runs" / key)
    tb.pop("checkpoints/last.prev.pt", None)  # never pushed: it would double checkpoint uploads
    assert tc == tb
    only = machine(tmp_path, "d")
    r = cli(only, env, "pull", "-e", "1", "--only", "metrics")
    assert r.returncode == 0, r.stderr
    assert sorted(tree(only / "runs" / key)) == ["config.json", "logs/train.log", "manifest.json", "metrics.jsonl"]
    runs = cli(c, env, "runs", "-e", "1", "--json")
    rows = json.loads(runs.stdout)
    assert rows[0]["key"] == key and rows[0]["where"] == "same"


@pytest.mark.integration
def test_resume_from_local_folder_store(tmp_path):
    _resume_elsewhere(tmp_path, {"MOLREMOTE_STORE": str(tmp_path / "shared-store")})


@pytest.mark.integration
def test_resume_from_hub_store(tmp_path):
    with HubServer(tmp_path / "hub", token="hf_testtokentesttokentest") as hub:
        _resume_elsewhere(
            tmp_path,
            {
                "MOLREMOTE_STORE": "hf://tester/molremote-runs",
                "HF_ENDPOINT": hub.url,
                "HF_TOKEN": "hf_testtokentesttokentest",
                "HF_HUB_DISABLE_XET": "1",
            },
        )
        stored = hub.state.snapshot("tester/molremote-runs", "runs")
        assert any(p.endswith("/manifest.json") for p in stored)
        assert any(p.endswith(".pt") for p in stored)  # checkpoints took the LFS path (the tree says so)
        assert all(
            e["lfs"] for p, e in hub.state.tree_at("models", "tester/molremote-runs")[1].items() if p.endswith(".pt")
        )
