"""W&B online: the real wandb client (its Go wandb-core does the HTTP) against the loopback W&B server
(tests/servers/wandb_server.py). A resumed run lands in one W&B run with one history, and `molremote wandb-sync`
uploads offline sessions in start order."""

import json
import subprocess
import sys

import pytest

from molremote.settings import Settings, WandbSettings
from molremote.tracking import open_tracker, wandb_run_id
from tests.conftest import ROOT
from tests.helpers.env import isolate_env
from tests.servers.wandb_server import WandbServer

pytestmark = pytest.mark.integration
KEY = "wandbloopbackkey" + "0" * 24  # W&B keys are 40 characters
HASH = "abc123def456"
RUN_ID = wandb_run_id(620, 1, HASH)
SECRETS = {"HF_TOKEN": "hf_ONLINESECRETabcdefghijklmnop", "KAGGLE_KEY": "KAGGLEONLINESECRET42"}
EXP = {"id": 620, "slug": "toy", "config_hash": HASH, "tags": ["demo"], "training": {"epochs": 2, "lr": 0.001}}
MANIFEST = {
    "experiment": 620,
    "name": "0620_toy",
    "fold": 1,
    "config_hash": HASH,
    "run_uid": "uid-1",
    "code": {"commit": "0" * 40, "dirty": False, "bundle_hash": "b"},
    "machine": {"hostname": "box"},
}


@pytest.fixture
def wandb_server(tmp_path, monkeypatch):
    isolate_env(monkeypatch, tmp_path)
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    import wandb

    # wandb keeps one service per process and ignores later env changes (WANDB_BASE_URL) once it runs: an
    # earlier test's offline run would send this test's online run to the real W&B. Start a fresh one.
    wandb.teardown()
    with WandbServer(KEY) as server:
        monkeypatch.setenv("WANDB_BASE_URL", server.url)
        yield server
    wandb.teardown()
    assert server.state.unknown == []  # the client asked nothing the server had to guess


def run_dir(tmp_path):
    d = tmp_path / "runs" / "0620_toy" / f"fold1-{HASH}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "manifest.json").write_text(json.dumps(MANIFEST))
    return d


def session(d, mode: str, steps: dict[int, float], status: str):
    t = open_tracker(d, EXP, MANIFEST, 1, Settings(wandb=WandbSettings(mode=mode, project="molremote-test")))
    for step, loss in steps.items():
        t.log({"loss": loss}, step=step)
    t.summary({"best_auc": 0.6 + 0.01 * max(steps)})
    t.finish(status)
    return t


def test_a_resumed_online_run_is_one_wandb_run_with_one_history(tmp_path, wandb_server, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    d = run_dir(tmp_path)
    t1 = session(d, "online", {0: 0.9, 1: 0.7, 2: 0.5}, "incomplete")
    # the resumed session replays step 2 from its checkpoint: W&B already holds it, the tracker skips it
    t2 = session(d, "online", {2: 0.55, 3: 0.4, 4: 0.3}, "complete")
    assert (t1.mode, t2.mode, t1.run_id, t2.run_id) == ("online", "online", RUN_ID, RUN_ID)
    st = wandb_server.state
    assert list(st.runs) == [("tester", "molremote-test", RUN_ID)]
    run = st.runs[("tester", "molremote-test", RUN_ID)]
    assert [(r["_step"], r["loss"]) for r in run.history] == [(0, 0.9), (1, 0.7), (2, 0.5), (3, 0.4), (4, 0.3)]
    assert run.summary["status"] == "complete" and run.summary["best_auc"] == pytest.approx(0.64)
    assert (run.completes, run.exitcode) == (2, 0)  # two sessions, each finished cleanly
    assert st.calls["graphql:RunResumeStatus"] == 2 and run.upserts >= 2
    assert run.config["experiment"]["value"]["training"] == {"epochs": 2, "lr": 0.001}
    assert run.config["manifest"]["value"]["run_uid"] == "uid-1"
    assert (run.group, run.job_type, run.display_name) == ("0620_toy", "fold1", "0620_toy-fold1")
    assert sorted(run.tags) == ["demo", "exp0620", "fold1"]
    assert {"wandb-summary.json", "config.yaml", "wandb-metadata.json"} <= set(run.files)
    for body in st.bodies + list(run.files.values()):  # no secret reached W&B
        assert all(v.encode() not in body for v in SECRETS.values())


def test_online_with_a_rejected_key_falls_back_to_offline(tmp_path, wandb_server, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    import molremote.tracking as tracking

    real_init = tracking._init

    def quick(wandb, mode, kwargs):  # wandb-core retries the 401s until init_timeout: 120 s in production
        kwargs["settings"].init_timeout = 5.0
        return real_init(wandb, mode, kwargs)

    monkeypatch.setattr(tracking, "_init", quick)
    t = session(run_dir(tmp_path), "online", {0: 0.9}, "complete")
    assert t.mode == "offline" and wandb_server.state.runs == {}
    assert list((tmp_path / "runs").rglob("offline-run-*/run-*.wandb"))  # nothing lost: it can be synced later


def test_wandb_sync_uploads_offline_sessions_in_order(tmp_path, wandb_server):
    d = run_dir(tmp_path)
    session(d, "offline", {0: 0.9, 1: 0.7, 2: 0.5}, "incomplete")
    session(d, "offline", {3: 0.4, 4: 0.3}, "complete")
    assert wandb_server.state.runs == {}
    import os

    env = {**os.environ, "WANDB_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    p = subprocess.run(
        [sys.executable, "-m", "molremote", "wandb-sync", str(d), "--project", "molremote-test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"ok {RUN_ID}: 2 folder(s)" in p.stdout
    run = wandb_server.state.runs[("tester", "molremote-test", RUN_ID)]
    assert list(wandb_server.state.runs) == [("tester", "molremote-test", RUN_ID)]
    assert [(r["_step"], r["loss"]) for r in run.history] == [(0, 0.9), (1, 0.7), (2, 0.5), (3, 0.4), (4, 0.3)]
    assert run.summary["status"] == "complete"
    assert all(v.encode() not in b for b in wandb_server.state.bodies for v in SECRETS.values())
