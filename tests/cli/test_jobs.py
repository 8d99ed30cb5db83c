"""molremote/cli/jobs.py: status / logs / cancel / fetch over job records, against a Kaggle job on the
loopback Kaggle server (the real kaggle client, in a `molremote` subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from molremote import jobs
from molremote.backends.base import Job
from molremote.backends.kaggle import KaggleBackend
from molremote.backends.kaggle_api import ENDPOINT_ENV
from molremote.bundle import make_bundle
from tests.backends.test_kaggle import fake_session, tiny_experiment
from tests.servers.kaggle_runtime import KaggleRuntime

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def molremote(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    code = (
        "import sys; import molremote.cli.jobs, molremote.cli.remote; from molremote.cli import main; "
        "sys.argv[0] = 'molremote'; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.fixture
def env(kaggle_server, tmp_path, monkeypatch):
    proj = tmp_path / "proj"
    (proj / "pkg").mkdir(parents=True)
    (proj / "pkg" / "x.py").write_text("X = 1\n")
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "x"]):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=proj, check=True)
    values = {
        "HOME": str(tmp_path),
        "MOLREMOTE_PROJECT": str(proj),
        "MOLREMOTE_JOBS": str(tmp_path / "jobs"),
        "MOLREMOTE_RUNS": str(tmp_path / "runs"),
        "KAGGLE_USERNAME": kaggle_server.username,
        "KAGGLE_KEY": kaggle_server.key,
        ENDPOINT_ENV: kaggle_server.url,
    }
    for k in (
        "KAGGLE_API_TOKEN",
        "KAGGLE_CONFIG_DIR",
        "MOLREMOTE_KAGGLE_ACCOUNT",
        "MOLREMOTE_CONFIG",
        "MOLREMOTE_STORE",
    ):
        monkeypatch.delenv(k, raising=False)
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return {**os.environ}


def test_status_logs_cancel_fetch_of_a_kaggle_job(env, kaggle_server, tmp_path):
    r = molremote("status", env=env)
    assert r.returncode == 0 and "no jobs" in r.stdout
    exp = tiny_experiment().to_json()
    key = f"0001_belka_tiny/fold0-{exp['config_hash']}"
    runtime = KaggleRuntime(kaggle_server, tmp_path / "kaggle", fake=fake_session([75]))
    try:
        bundle = make_bundle(Path(env["MOLREMOTE_PROJECT"]), tmp_path / "bundles")
        rec = KaggleBackend(poll_s=0.05, kernels_dir=str(tmp_path / "kernels")).launch(
            Job(job_id="cli-job", experiment=exp, folds=[0], bundle=bundle)
        )
        KaggleBackend().wait(rec, poll_s=0.05, timeout_s=30)
    finally:
        runtime.close()
    r = molremote("status", "-e", "1", env=env)
    assert r.returncode == 0, r.stderr
    assert "cli-job" in r.stdout and "kaggle" in r.stdout and "incomplete" in r.stdout
    r = molremote("logs", "-e", "1", env=env)
    assert r.returncode == 0 and r.stdout == "session 1: trainer exit 75\n", r.stderr
    # Kaggle has no cancel API: said plainly, non-zero exit, the record is left as it was
    jobs.update(jobs.load("cli-job"), state="running")
    r = molremote("cancel", "-e", "1", env=env)
    assert r.returncode == 6 and "no API to stop a running kernel" in r.stderr
    assert jobs.load("cli-job").state == "running"
    kaggle_server.set_output(rec.handle["kernel"], {f"runs/{key}/manifest.json": '{"status": "incomplete"}'})
    r = molremote("fetch", "-e", "1", env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "runs" / key / "manifest.json").read_text() == '{"status": "incomplete"}'
    r = molremote("logs", "-e", "99", env=env)
    assert r.returncode == 6 and "no job of experiment 99" in r.stderr
