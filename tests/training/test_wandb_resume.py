"""W&B through the trainer, offline: config holds the experiment and commit, history the metrics, and a
run resumed after --max-time continues the same W&B run id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import wandb_reader
from tests.helpers.env import isolate_env
from tests.training.test_store_resume import cli, machine


@pytest.mark.integration
def test_offline_wandb_run_resumes_with_the_same_id(tmp_path, monkeypatch):
    isolate_env(monkeypatch, tmp_path)
    p = machine(tmp_path, "w")
    env = {"MOLREMOTE_WANDB_MODE": "offline", "MOLREMOTE_STORE": ""}
    first = cli(p, env, "train", "-e", "1", "--max-time", "1.5s")
    assert first.returncode == 75, first.stderr
    second = cli(p, env, "train", "-e", "1")
    assert second.returncode == 0, second.stderr
    run_dir = Path(second.stdout.strip().splitlines()[-1])
    folders = sorted((run_dir / "logs" / "wandb").glob("offline-run-*"))
    assert len(folders) == 2  # one per session, same id: `wandb sync` replays them in order
    infos = [wandb_reader.run_info(wandb_reader.wandb_file(f)) for f in folders]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    expected_id = f"0001-f0-{manifest['config_hash']}"
    assert [i["id"] for i in infos] == [expected_id, expected_id]
    cfg = infos[0]["config"]
    assert cfg["experiment"]["id"] == 1 and cfg["experiment"]["config_hash"] == manifest["config_hash"]
    assert cfg["manifest"]["commit"] == manifest["code"]["commit"] and cfg["manifest"]["run_uid"] == manifest["run_uid"]
    rows = [r for f in folders for r in wandb_reader.history(wandb_reader.wandb_file(f))]
    accs = [r["valid_acc"] for r in rows if "valid_acc" in r]
    local = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert accs == [r["valid_acc"] for r in local if "valid_acc" in r] and len(accs) == 2
