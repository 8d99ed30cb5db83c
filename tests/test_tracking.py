"""W&B tracking against the real wandb client in offline mode; its run files are read back and checked."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from molremote.errors import ConfigError
from molremote.settings import Settings, WandbSettings, load_settings
from molremote.tracking import NullTracker, offline_runs, open_tracker, sync_offline, wandb_config, wandb_run_id
from tests.conftest import ROOT
from tests.helpers import wandb_reader as wr
from tests.helpers.env import isolate_env

HASH = "abc123def456"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SECRETS = {"HF_TOKEN": "hf_TRACKSECRETabcdefghijklmnopq", "KAGGLE_USERNAME": "me", "KAGGLE_KEY": "KAGGLETRACKSECRET42"}
EXP = {
    "id": 620,
    "slug": "toy",
    "config_hash": HASH,
    "tags": ["demo"],
    "task": {"name": "toy"},
    "training": {"epochs": 2, "lr": 0.001},
}


def manifest(fold: int = 1) -> dict:
    return {
        "experiment": 620,
        "name": "0620_toy",
        "fold": fold,
        "config_hash": HASH,
        "run_uid": "uid-1",
        "code": {"commit": COMMIT, "dirty": False, "bundle_hash": "bundle-sha"},
        "machine": {"hostname": "box", "backend": "local"},
        "status": "running",
    }


def offline(project: str = "molremote-test", **kw) -> Settings:
    return Settings(wandb=WandbSettings(mode="offline", project=project, **kw))


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """Two training sessions of one run (the second a resume), each a real offline wandb run."""
    tmp = tmp_path_factory.mktemp("tracking")
    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, tmp)
        for k, v in SECRETS.items():
            mp.setenv(k, v)
        run_dir = tmp / "runs" / "0620_toy" / f"fold1-{HASH}"
        run_dir.mkdir(parents=True)
        (run_dir / "manifest.json").write_text(json.dumps(manifest()))

        t1 = open_tracker(run_dir, EXP, manifest(), 1, offline())
        for step, loss in enumerate([0.9, 0.7, 0.5]):
            t1.log({"loss": loss, "lr": 0.001}, step=step)
        # > 32 KiB: the summary record spans several log blocks (FIRST/MIDDLE/LAST)
        t1.summary({"best_auc": 0.61, "notes": "x" * 70_000})
        t1.finish("incomplete")

        # The resumed session: online without any API key falls back to offline, same run id.
        t2 = open_tracker(
            run_dir, EXP, manifest(), 1, Settings(wandb=WandbSettings(mode="online", project="molremote-test"))
        )
        t2.log({"loss": 0.4}, step=3)
        t2.log({"loss": 0.3}, step=4)
        t2.summary({"best_auc": 0.66})
        t2.finish("complete")
        yield {"run_dir": run_dir, "t1": t1, "t2": t2, "tmp": tmp, "mp": mp}


def folders(sessions) -> list[Path]:
    runs = offline_runs(sessions["run_dir"], offline())
    assert list(runs) == [wandb_run_id(620, 1, HASH)]
    return runs[wandb_run_id(620, 1, HASH)]


def test_run_id_is_stable_and_sanitised():
    assert wandb_run_id(620, 1, HASH) == "0620-f1-abc123def456"
    assert wandb_run_id(5, 0, "a/b c:d") == "0005-f0-a-b-c-d"
    long = wandb_run_id(1, 0, "h" * 100)
    assert len(long) == 64 and long != wandb_run_id(1, 0, "h" * 99)


@pytest.mark.integration
def test_resumed_session_continues_the_same_run(sessions):
    rid = "0620-f1-abc123def456"
    assert sessions["t1"].run_id == sessions["t2"].run_id == rid
    assert sessions["t1"].mode == "offline" and sessions["t2"].mode == "offline"  # online without key -> offline
    f1, f2 = folders(sessions)
    assert f1.parent == sessions["run_dir"] / "logs" / "wandb"  # offline files travel with the run folder
    assert wr.run_info(wr.wandb_file(f1))["id"] == wr.run_info(wr.wandb_file(f2))["id"] == rid


@pytest.mark.integration
def test_config_holds_experiment_and_code(sessions):
    info = wr.run_info(wr.wandb_file(folders(sessions)[0]))
    cfg = info["config"]
    assert cfg["experiment"] == EXP
    assert cfg["manifest"] == {
        "commit": COMMIT,
        "dirty": False,
        "bundle_hash": "bundle-sha",
        "run_uid": "uid-1",
        "machine": {"hostname": "box", "backend": "local"},
    }
    assert info["project"] == "molremote-test" and info["group"] == "0620_toy" and info["job_type"] == "fold1"
    assert set(info["tags"]) == {"demo", "fold1", "exp0620"}
    assert info["display_name"] == "0620_toy-fold1"


@pytest.mark.integration
def test_history_and_summary_hold_the_logged_metrics(sessions):
    f1, f2 = (wr.wandb_file(f) for f in folders(sessions))
    h1 = [(r["_step"], r["loss"], r["lr"]) for r in wr.history(f1)]
    assert h1 == [(0, 0.9, 0.001), (1, 0.7, 0.001), (2, 0.5, 0.001)]
    assert [(r["_step"], r["loss"]) for r in wr.history(f2)] == [(3, 0.4), (4, 0.3)]
    s1, s2 = wr.summary(f1), wr.summary(f2)
    assert s1["status"] == "incomplete" and s1["best_auc"] == 0.61 and s1["notes"] == "x" * 70_000
    assert s2["status"] == "complete" and s2["best_auc"] == 0.66 and s2["loss"] == 0.3
    assert wr.exit_code(f1) == 0 and wr.exit_code(f2) == 0
    assert "preempting" in wr.record_kinds(f1) and "preempting" not in wr.record_kinds(f2)  # resumable stop


@pytest.mark.integration
def test_no_secret_written_anywhere(sessions):
    files = [p for p in sessions["run_dir"].rglob("*") if p.is_file()]
    assert len(files) > 4
    for p in files:
        data = p.read_bytes()
        for k in ("HF_TOKEN", "KAGGLE_KEY"):
            assert SECRETS[k].encode() not in data, (p, k)


@pytest.mark.integration
def test_sync_offline_plans_one_sync_per_run_in_start_order(sessions):
    f1, f2 = folders(sessions)
    with pytest.raises(ConfigError, match="WANDB_API_KEY"):
        sync_offline(sessions["run_dir"], settings=offline())
    (res,) = sync_offline(sessions["run_dir"], project="proj-x", entity="team-y", dry_run=True, settings=offline())
    assert res.run_id == "0620-f1-abc123def456" and res.paths == [f1, f2]
    i = res.command.index("sync")
    assert res.command[i : i + 7] == ["sync", "--id", res.run_id, "--project", "proj-x", "--entity", "team-y"]
    assert res.command[-2:] == [str(f1), str(f2)] and "--dry-run" in res.command
    assert res.ok, res.output
    assert "Would sync 2 run(s)" in res.output  # the real `wandb sync` found both session files


def test_offline_runs_groups_by_file_id_and_orders_by_start(tmp_path):
    shared = tmp_path / "shared"
    names = {
        "offline-run-20260101_000002-0620-f1-h": "0620-f1-h",
        "offline-run-20260101_000001-0620-f1-h-1": "0620-f1-h",  # same-second second start
        "offline-run-20260101_000001-0620-f1-h": "0620-f1-h",
        "offline-run-20260101_000001-0620-f2-h": "0620-f2-h",
    }
    for folder, rid in names.items():
        (shared / "wandb" / folder).mkdir(parents=True)
        (shared / "wandb" / folder / f"run-{rid}.wandb").write_bytes(b":W&B")
    (shared / "wandb" / "offline-run-20260101_000003-broken").mkdir()  # no .wandb file: ignored
    got = offline_runs(shared, Settings())
    assert {k: [p.name for p in v] for k, v in got.items()} == {
        "0620-f1-h": [
            "offline-run-20260101_000001-0620-f1-h",
            "offline-run-20260101_000001-0620-f1-h-1",
            "offline-run-20260101_000002-0620-f1-h",
        ],
        "0620-f2-h": ["offline-run-20260101_000001-0620-f2-h"],
    }
    # A run folder with a shared [wandb] dir: only its own W&B run is picked.
    run_dir = tmp_path / "runs" / "0620_toy" / "fold2-h"
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps({"experiment": 620, "fold": 2, "config_hash": "h"}))
    got = offline_runs(run_dir, Settings(wandb=WandbSettings(dir=str(shared))))
    assert list(got) == ["0620-f2-h"]


def test_disabled_mode_writes_nothing(tmp_path, monkeypatch):
    isolate_env(monkeypatch, tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    t = open_tracker(run_dir, EXP, manifest(), 1, load_settings())  # default mode: disabled
    assert isinstance(t, NullTracker) and t.run_id is None
    t.log({"loss": 1.0}, step=0)
    t.summary({"x": 1})
    t.finish("complete")
    assert list(run_dir.rglob("*")) == []
    assert not (tmp_path / "wandb-data").exists() and not (tmp_path / "wandb-config").exists()


def test_disabled_mode_never_imports_wandb(tmp_path):
    code = (
        "import sys\nfrom molremote.tracking import open_tracker\nfrom molremote.settings import Settings\n"
        f"t = open_tracker({str(tmp_path)!r}, {{'id': 1, 'config_hash': 'h'}}, {{}}, 0, Settings())\n"
        "t.log({'a': 1}, step=0); t.finish('complete')\n"
        "assert 'wandb' not in sys.modules and 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_non_zero_ddp_rank_does_not_track(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert isinstance(open_tracker(tmp_path, EXP, manifest(), 1, offline()), NullTracker)
    assert list(tmp_path.rglob("*")) == []


def test_wandb_config_drops_secret_looking_keys():
    m = manifest()
    m["machine"] = {"hostname": "box", "api_key": "nope", "nested": {"HF_TOKEN": "nope", "ok": 1}}
    cfg = wandb_config(EXP, m)
    assert cfg["manifest"]["machine"] == {"hostname": "box", "nested": {"ok": 1}}
    assert "nope" not in json.dumps(cfg)


def test_wandb_config_masks_secrets_inside_values():
    """A token in a URL or a password in a destination never reaches W&B config (issue 11 item 3)."""
    tok = "hf_" + "QxZ7rT2mN9vB4kL1pW8sY3dF6gH0jA5cE2uR"
    exp = {**EXP, "data": {"url": "https://example.org/x?token=" + tok, "mirror": "https://me:" + "pw1234@host/d"}}
    cfg = wandb_config(exp, manifest())
    text = json.dumps(cfg)
    assert tok[3:] not in text and "pw1234" not in text
    assert cfg["experiment"]["data"] == {"url": "https://example.org/x?token=***", "mirror": "https://me:***@host/d"}
