"""molremote/backends/kaggle.py: rendered kernel (golden), push payload through the real kaggle client against
the loopback Kaggle server, the kernel executed locally in a simulated /kaggle, chained sessions, quota, data."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from molremote import jobs
from molremote.backends.base import Job
from molremote.backends.kaggle import KaggleBackend, chain, kernel_slug, push_dataset
from molremote.bundle import BundleInfo, make_bundle
from molremote.errors import BackendError, UsageError
from molremote.experiments import validate
from tests.helpers.env import kaggle_client_env
from tests.servers.kaggle_runtime import KaggleRuntime

from .conftest import EXPERIMENT, ROOT, check_golden, git

pytestmark = pytest.mark.integration

OWNER = "molremote-tester"  # the loopback server's default account
DATA_SLUG = "belka-tiny"
SESSION_ENV_KEYS = ("MOLREMOTE_", "KAGGLE_", "WANDB_", "HF_", "PYTHONPATH")


def tiny_experiment(epochs: int = 3):
    """BELKA on a 6,000-row slice of the demo data, a very small CNN: seconds per session on CPU."""
    return validate(
        {
            "id": 1,
            "slug": "belka_tiny",
            "task": {"name": "belka"},
            "model": {"name": "cnn1d", "embed_dim": 8, "channels": [8, 8, 8], "hidden": [16]},
            "training": {"epochs": epochs, "batch_size": 32, "max_steps_per_epoch": 20, "device": "cpu"},
            "folds": {"n_folds": 5, "run": [0]},
            "data": {"root": "data/belka", "kaggle_datasets": [f"{OWNER}/{DATA_SLUG}"]},
        },
        file=None,
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a simulated kernel: nothing of this machine's molremote/Kaggle/W&B/HF setup."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SESSION_ENV_KEYS)}
    return {**env, "WANDB_MODE": "disabled", **extra}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("data") / "belka"
    d.mkdir()
    demo = ROOT / "molremote" / "demo_data" / "belka"
    pd.read_parquet(demo / "train.parquet").iloc[:6000].to_parquet(d / "train.parquet", index=False)
    pd.read_parquet(demo / "test.parquet").iloc[:600].to_parquet(d / "test.parquet", index=False)
    return d


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> BundleInfo:
    """The molremote package (without the text2mol demo data) committed in a git project: what kernels run."""
    p = tmp_path_factory.mktemp("code") / "proj"
    shutil.copytree(
        ROOT / "molremote", p / "molremote", ignore=shutil.ignore_patterns("__pycache__", "text2mol", "*.pyc")
    )
    shutil.copy(ROOT / "pyproject.toml", p / "pyproject.toml")
    git(p, "init", "-q")
    git(p, "add", ".")
    git(p, "commit", "-qm", "code")
    return make_bundle(p, p.parent / "bundles")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, bundle, data_dir):
    """One uninterrupted session of the rendered kernel in a simulated /kaggle (inline bundle, dataset at the
    2026 mount path, a secret read from the environment)."""
    tmp = tmp_path_factory.mktemp("reference")
    job = Job(job_id="reference", experiment=tiny_experiment().to_json(), folds=[0], bundle=bundle)
    backend = KaggleBackend(username=OWNER, inline_max_mb=50, margin_minutes=0, secrets=["EXTRA_SECRET"])
    folder = backend.write_folder(job, tmp / "kernel")
    root = tmp / "kaggle"
    mount = root / "input" / "datasets" / OWNER / DATA_SLUG
    shutil.copytree(data_dir, mount)
    (root / "working").mkdir()
    cp = subprocess.run(
        [sys.executable, str(folder / "molremote_kernel.py")],
        cwd=root / "working",
        env=clean_env(MOLREMOTE_KAGGLE_ROOT=str(root), EXTRA_SECRET="s3cr3t-value-xyz"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    return {
        "root": root,
        "cp": cp,
        "folder": folder,
        "job": job,
        "run_dir": root / "working" / "runs" / f"0001_belka_tiny/fold0-{tiny_experiment().config_hash}",
    }


@pytest.fixture
def kenv(kaggle_server, tmp_path, monkeypatch):
    """This machine talks to the loopback server as its default account; secrets set in the environment."""
    kaggle_client_env(monkeypatch, tmp_path, kaggle_server)
    values = {"HF_TOKEN": "hf_" + secrets.token_hex(16), "WANDB_API_KEY": secrets.token_hex(20)}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return {**values, "KAGGLE_KEY": kaggle_server.key, "tmp": tmp_path}


def status_of(text: str) -> str:
    return re.search(r"'job_id': '([^']+)'", text).group(1)


# ------------------------------------------------------------------------------------------- render
def test_render_golden(tmp_path):
    blob = b"molremote golden bundle: not a real archive\n" * 4
    path = tmp_path / "bundle-golden.tar.gz"
    path.write_bytes(blob)
    b = BundleInfo(
        path=path,
        sha256=hashlib.sha256(blob).hexdigest(),
        commit="c0ffee" * 6 + "abcd",
        dirty=False,
        files=3,
        size=len(blob),
        content_hash="ab" * 32,
        dependencies={"": ["numpy>=1.26"], "train": ["torch>=2.6"]},
    )
    exp = {**EXPERIMENT, "data": {"root": "data/belka", "kaggle_datasets": ["someone/belka-prepared"]}}
    job = Job(job_id="0620_fatgcn-kaggle-golden-f1", experiment=exp, folds=[1], bundle=b)
    backend = KaggleBackend(username="golden-user", store="hf://golden-user/runs", wandb_mode="online")
    files = backend.render(job)
    assert files == backend.render(job)  # pure: same job, same text
    check_golden("kaggle_kernel-metadata.json", files["kernel-metadata.json"])
    check_golden("kaggle_kernel.py", files["molremote_kernel.py"])
    meta = json.loads(files["kernel-metadata.json"])
    assert meta["id"] == "golden-user/mr-0620-f1-01234567" and meta["title"] == "mr-0620-f1-01234567"
    assert meta["competition_sources"] == ["leash-BELKA"]  # BelkaTask.competition
    assert meta["dataset_sources"] == ["someone/belka-prepared"]  # small bundle: embedded, no code dataset


def test_bundle_too_big_goes_to_a_dataset_and_accelerators(bundle):
    exp = tiny_experiment().to_json()
    job = Job(job_id="j", experiment=exp, folds=[2], bundle=bundle)
    files = KaggleBackend(username="me", inline_max_mb=0.01).render(job)
    meta = json.loads(files["kernel-metadata.json"])
    assert meta["dataset_sources"] == [f"{OWNER}/{DATA_SLUG}", f"me/mr-code-{bundle.sha256[:16]}"]
    assert "'mode': 'dataset'" in files["molremote_kernel.py"] and "BUNDLE_B64 = []" in files["molremote_kernel.py"]
    assert len(files["molremote_kernel.py"]) < 40_000
    tpu = json.loads(KaggleBackend(username="me", accelerator="TpuV38").render(job)["kernel-metadata.json"])
    assert (tpu["enable_tpu"], tpu["enable_gpu"], tpu["machine_shape"]) == (True, False, "TpuV38")
    cpu = json.loads(KaggleBackend(username="me", accelerator="none").render(job)["kernel-metadata.json"])
    assert (cpu["enable_gpu"], "machine_shape" in cpu) == (False, False)
    with pytest.raises(UsageError, match="unknown Kaggle accelerator 'T4'.*NvidiaTeslaT4"):
        KaggleBackend(username="me", accelerator="T4").render(job)
    with pytest.raises(BackendError, match="one fold"):
        KaggleBackend(username="me").render(Job(job_id="j", experiment=exp, folds=[0, 1], bundle=bundle))


# ------------------------------------------------------------------------------------------- push
def test_push_payload_unique_slugs_and_no_secret_anywhere(kenv, kaggle_server, bundle, data_dir):
    exp = tiny_experiment()
    push_dataset("belka", data_dir, slug=DATA_SLUG)
    backend = KaggleBackend(
        store="hf://molremote-tester/runs",
        wandb_mode="online",
        accelerator="NvidiaL4",
        inline_max_mb=50,
        kernels_dir=str(kenv["tmp"] / "kernels"),
    )
    kdir = kenv["tmp"] / "kernels"
    recs = [
        backend.launch(Job(job_id=f"push-f{f}", experiment=exp.to_json(), folds=[f], bundle=bundle)) for f in (0, 1)
    ]
    b0, b1 = kaggle_server.pushes
    assert b0["slug"] == f"{OWNER}/mr-0001-f0-{exp.config_hash[:8]}" != b1["slug"]
    assert b1["slug"] == f"{OWNER}/{kernel_slug(exp.to_json(), 1)}" and b0["newTitle"] == b0["slug"].split("/")[1]
    assert (b0["language"], b0["kernelType"], b0["isPrivate"]) == ("python", "script", True)
    assert (b0["enableGpu"], b0.get("enableTpu", False), b0["enableInternet"]) == (True, False, True)
    assert b0["machineShape"] == "NvidiaL4" and b0["sessionTimeoutSeconds"] == 12 * 3600
    assert b0["datasetDataSources"] == [f"{OWNER}/{DATA_SLUG}"] and b0["competitionDataSources"] == ["leash-BELKA"]
    # secrets: named in the script (it reads them from Kaggle Secrets), their values nowhere
    assert "HF_TOKEN" in b0["text"] and "WANDB_API_KEY" in b0["text"]
    for name in ("HF_TOKEN", "WANDB_API_KEY", "KAGGLE_KEY"):
        value = kenv[name].encode()
        assert not any(value in c.raw for c in kaggle_server.calls), name
        assert not any(value in p.read_bytes() for p in kdir.rglob("*") if p.is_file()), name
    # job records: one per kernel, findable by experiment, no secret in them either
    saved = jobs.load_all(experiment=1)
    assert [r.handle["kernel"] for r in saved] == [r.handle["kernel"] for r in recs]
    assert saved[0].backend == "kaggle" and saved[0].handle["version"] == 1 and saved[0].state == "pending"
    assert not any(kenv[n] in json.dumps(r.to_json()) for r in saved for n in ("HF_TOKEN", "WANDB_API_KEY"))


# ------------------------------------------------------------------------------------------- the kernel
@pytest.mark.slow
def test_rendered_kernel_runs_end_to_end_in_a_simulated_kaggle(reference):
    cp, run_dir = reference["cp"], reference["run_dir"]
    assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-3000:]
    out = cp.stdout
    assert "secrets read from environment: EXTRA_SECRET" in out and "s3cr3t-value-xyz" not in out + cp.stderr
    assert f"data: dataset {OWNER}/{DATA_SLUG} at {reference['root']}/input/datasets/{OWNER}/{DATA_SLUG}" in out
    status = json.loads((reference["root"] / "working" / "molremote-status.json").read_text())
    assert (status["state"], status["exit_code"], status["job_id"]) == ("complete", 0, "reference")
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "complete" and m["best"]["metric"] == "belka_ap" and 0 < m["best"]["value"] <= 1
    assert m["config_hash"] == tiny_experiment().config_hash  # data.root linked, not rewritten
    for rel in (
        "config.json",
        "metrics.jsonl",
        "checkpoints/best.pt",
        "checkpoints/last.pt",
        "predictions/valid.parquet",
        "predictions/test.parquet",
        "submission.csv",
    ):
        assert (run_dir / rel).is_file(), rel
    assert len(pd.read_csv(run_dir / "submission.csv")) == 600
    assert status["best"] == m["best"]
    # the code came from the embedded bundle, the data from the searched mount
    assert (reference["root"] / "temp" / "molremote-code" / reference["job"].bundle.sha256[:16] / "molremote").is_dir()
    assert os.path.islink(reference["root"] / "temp" / "molremote-project" / "data" / "belka")


def test_missing_secret_fails_fast_naming_it(tmp_path, bundle):
    job = Job(job_id="nosecret", experiment=tiny_experiment().to_json(), folds=[0], bundle=bundle)
    folder = KaggleBackend(username=OWNER, store="hf://me/runs", wandb_mode="online", inline_max_mb=0.01).write_folder(
        job, tmp_path / "k"
    )
    root = tmp_path / "kaggle"
    cp = subprocess.run(
        [sys.executable, str(folder / "molremote_kernel.py")],
        cwd=tmp_path,
        env=clean_env(MOLREMOTE_KAGGLE_ROOT=str(root), HF_TOKEN="hf_" + "x" * 20),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cp.returncode == 1
    assert "missing secret WANDB_API_KEY (WANDB_API_KEY: W&B tracking is online)" in cp.stdout
    assert "Set the environment variable WANDB_API_KEY" in cp.stdout
    status = json.loads((root / "working" / "molremote-status.json").read_text())
    assert status["state"] == "failed" and "WANDB_API_KEY" in status["message"] and status["elapsed_s"] < 5
    assert not (root / "temp").exists()  # nothing unpacked or trained
    # inside Kaggle (kaggle_secrets importable, the secret not attached): where to attach it
    fake = tmp_path / "fake_kaggle_secrets"
    fake.mkdir()
    (fake / "kaggle_secrets.py").write_text(
        "class UserSecretsClient:\n"
        "    def get_secret(self, label):\n"
        "        if label == 'HF_TOKEN':\n            return 'hf_attached_value_123'\n"
        "        raise Exception('Unexpected response from the service.')\n"
    )
    cp = subprocess.run(
        [sys.executable, str(folder / "molremote_kernel.py")],
        cwd=tmp_path,
        env=clean_env(
            MOLREMOTE_KAGGLE_ROOT=str(root), PYTHONPATH=str(fake), WANDB_API_KEY="env-is-not-read-inside-kaggle"
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cp.returncode == 1
    assert (
        f"Attach it in the kernel editor (https://www.kaggle.com/code/{OWNER}/mr-0001-f0-" in cp.stdout
        and "Add-ons -> Secrets -> add a secret labelled exactly WANDB_API_KEY" in cp.stdout
    )


# ------------------------------------------------------------------------------------------- chaining
@pytest.mark.slow
def test_chained_sessions_complete_with_the_result_of_one_uninterrupted_run(
    kenv, kaggle_server, bundle, data_dir, reference, tmp_path
):
    import torch

    assert reference["cp"].returncode == 0, reference["cp"].stderr[-2000:]
    push_dataset("belka", data_dir, slug=DATA_SLUG)
    store = tmp_path / "store"
    # session 1 gets a 1-second session limit: past it before training starts, so the trainer stops at its
    # deadline after its first step (exit 75), however fast or loaded this machine is
    runtime = KaggleRuntime(
        kaggle_server, tmp_path / "kaggle", env=clean_env(), session_env=[{"MOLREMOTE_KAGGLE_SESSION_LIMIT_S": "1"}]
    )
    backend = KaggleBackend(store=f"file://{store}", margin_minutes=0, poll_s=0.2, inline_max_mb=0.01)
    job = Job(job_id="chain", experiment=tiny_experiment().to_json(), folds=[0], bundle=bundle)
    said: list[str] = []
    try:
        state, recs = chain(backend, job, max_sessions=3, poll_s=0.2, echo=said.append)
    finally:
        runtime.close()
    s1, s2 = runtime.sessions
    assert state == "complete" and len(recs) == 2, "\n".join(said) + s1.output[-3000:]
    assert (
        "stopped (deadline) in epoch 1/" in s1.output
        and " batch 1/" in s1.output
        and "incomplete (trainer exit 75)" in s1.output
    )
    assert "restored 0001_belka_tiny/fold0-" in s2.output and "resuming" in s2.output
    assert any("previous version (COMPLETE)" in m for m in said)  # the stale status right after the 2nd push
    assert [r.state for r in jobs.load_all(experiment=1)] == ["incomplete", "complete"]
    # both sessions ran the same kernel, its code from the private dataset of this bundle
    code_ds = f"{OWNER}/mr-code-{bundle.sha256[:16]}"
    assert s1.ref == s2.ref and all(code_ds in s.body["datasetDataSources"] for s in (s1, s2))
    assert list(kaggle_server.datasets[code_ds].files) == [bundle.path.name]
    # the store holds the finished run; same weights and metrics as the uninterrupted run
    key = f"0001_belka_tiny/fold0-{tiny_experiment().config_hash}"
    from molremote.store import open_store

    run_dir = open_store(f"file://{store}").pull(key, tmp_path / "pulled" / key)
    ref_dir = reference["run_dir"]
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "complete" and len(m["sessions"]) == 2
    assert m["best"] == json.loads((ref_dir / "manifest.json").read_text())["best"]
    for name in ("best.pt", "last.pt"):
        a = torch.load(run_dir / "checkpoints" / name, map_location="cpu", weights_only=False)["model"]
        b = torch.load(ref_dir / "checkpoints" / name, map_location="cpu", weights_only=False)["model"]
        assert all(torch.equal(a[k], b[k]) for k in b), name

    def stable(p: Path) -> list[dict]:
        return [
            {k: v for k, v in json.loads(line).items() if k not in ("time", "samples_per_s")}
            for line in p.read_text().splitlines()
        ]

    assert stable(run_dir / "metrics.jsonl") == stable(ref_dir / "metrics.jsonl")
    # without a store there is nothing to resume from: refused before any push
    with pytest.raises(BackendError, match="chaining needs a store"):
        chain(KaggleBackend(), job, max_sessions=2)


def fake_session(exit_codes: list[int], gate: threading.Event | None = None):
    """A stand-in for the kernel: its status file says the trainer exited with exit_codes[n]."""

    def run(n: int, ref: str, body: dict) -> tuple[dict, str]:
        if gate is not None:
            assert gate.wait(30)
        job_id = status_of(body["text"])
        code = exit_codes[n]
        st = {
            "job_id": job_id,
            "session": n + 1,
            "exit_code": code,
            "state": {0: "complete", 75: "incomplete"}.get(code, "failed"),
            "message": f"trainer exit {code}",
            "best": {"metric": "belka_ap", "value": 0.25},
        }
        log = json.dumps([{"stream_name": "stdout", "time": 1.0, "data": f"session {n + 1}: trainer exit {code}\n"}])
        return st, log

    return run


def test_quota_exhausted_stops_the_chain(kenv, kaggle_server, bundle, tmp_path):
    kaggle_server.gpu_seconds_used = kaggle_server.gpu_seconds_total - 1.5 * 3600

    def spend(session):  # the first session uses up the week's GPU hours
        kaggle_server.gpu_seconds_used = kaggle_server.gpu_seconds_total - 0.2 * 3600

    runtime = KaggleRuntime(kaggle_server, tmp_path / "kaggle", fake=fake_session([75, 0]), on_session_end=spend)
    backend = KaggleBackend(store="file:///nowhere", poll_s=0.05, inline_max_mb=50)
    job = Job(job_id="quota", experiment=tiny_experiment().to_json(), folds=[0], bundle=bundle)
    try:
        with pytest.raises(BackendError) as e:
            chain(backend, job, max_sessions=4, poll_s=0.05, echo=lambda m: None)
    finally:
        runtime.close()
    assert len(kaggle_server.pushes) == 1
    assert "session 2 not pushed" in str(e.value) and "only 0.2 h of GPU quota left" in str(e.value)
    assert "refreshes at 2026-11-28" in str(e.value)
    # the first push ran with a session shortened to the 1.5 h of quota that were left
    assert kaggle_server.pushes[0]["sessionTimeoutSeconds"] == 5400


def test_status_past_stale_version_logs_fetch_and_cancel(kenv, kaggle_server, bundle, tmp_path):
    gate = threading.Event()
    runtime = KaggleRuntime(kaggle_server, tmp_path / "kaggle", fake=fake_session([75, 0], gate))
    backend = KaggleBackend(poll_s=0.05, inline_max_mb=50, kernels_dir=str(tmp_path))
    exp = tiny_experiment().to_json()
    try:
        gate.set()
        first = backend.launch(Job(job_id="s1", experiment=exp, folds=[0], bundle=bundle))
        st = backend.wait(first, poll_s=0.05, timeout_s=30)
        assert (st.state, st.detail.split(";")[0]) == (
            "incomplete",
            "stopped at the session deadline (exit 75): resumable, push the next session",
        )
        gate.clear()
        second = backend.launch(Job(job_id="s2", experiment=exp, folds=[0], bundle=bundle, options={"session": 2}))
        assert second.handle["version"] == 2
        st = backend.status(second)  # Kaggle still answers the first version's COMPLETE
        assert st.state == "pending" and "previous version (COMPLETE)" in st.detail
        assert [backend.status(second).state for _ in range(2)] == ["pending", "running"]
        assert "only once the session has ended" in next(backend.logs(second))
        gate.set()
        st = backend.wait(second, poll_s=0.05, timeout_s=30)
        assert st.state == "complete" and "best belka_ap 0.2500" in st.detail
    finally:
        gate.set()
        runtime.close()
    assert "".join(backend.logs(jobs.load(second.job_id))) == "session 2: trainer exit 0\n"
    # fetch: run folders out of the kernel output, nothing else
    key = "0001_belka_tiny/fold0-" + exp["config_hash"]
    kaggle_server.set_output(
        second.handle["kernel"],
        {
            f"runs/{key}/manifest.json": '{"status": "complete"}',
            f"runs/{key}/checkpoints/last.pt": b"\0weights",
            "molremote-status.json": "{}",
        },
    )
    got = backend.fetch(second, tmp_path / "runs")
    assert got == tmp_path / "runs" / key and (got / "checkpoints" / "last.pt").read_bytes() == b"\0weights"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["0001_belka_tiny"]
    with pytest.raises(BackendError, match=r"no API to stop a running kernel .*/code/molremote-tester/mr-0001-f0-"):
        backend.cancel(second)


# ------------------------------------------------------------------------------------------- CLI
def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    code = "import sys; import molremote.cli.remote; from molremote.cli import main; sys.argv[0] = 'molremote'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_data_push_creates_then_versions_with_subfolders(kenv, kaggle_server, tmp_path):
    d = tmp_path / "prepared"
    (d / "shards").mkdir(parents=True)
    (d / "train.parquet").write_bytes(b"PAR1 train")
    (d / "shards" / "part-0.bin").write_bytes(b"\x01\x02")
    r = cli(
        "data",
        "push",
        "--task",
        "belka",
        "--path",
        str(d),
        "--slug",
        "belka-prepared",
        env=dict(os.environ),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert f"created private dataset {OWNER}/belka-prepared" in r.stdout
    (d / "test.parquet").write_bytes(b"PAR1 test")
    r = cli(
        "data",
        "push",
        "--task",
        "belka",
        "--path",
        str(d),
        "--slug",
        "belka-prepared",
        "-m",
        "add test",
        env=dict(os.environ),
        cwd=tmp_path,
    )
    assert r.returncode == 0 and f"new version of private dataset {OWNER}/belka-prepared" in r.stdout, r.stderr
    ds = kaggle_server.datasets[f"{OWNER}/belka-prepared"]
    assert ds.is_private and [v.number for v in ds.versions] == [1, 2] and ds.versions[1].notes == "add test"
    assert ds.files == {"train.parquet": b"PAR1 train", "test.parquet": b"PAR1 test", "shards/part-0.bin": b"\x01\x02"}
    assert not (d / "dataset-metadata.json").exists()  # staged elsewhere: the user's folder is untouched
    bad = cli("data", "push", "--task", "nope", "--path", str(d), env=dict(os.environ), cwd=tmp_path)
    assert bad.returncode == 2 and "unknown task 'nope'" in bad.stderr


def test_cli_remote_dry_run_renders_and_prints_without_pushing(kenv, kaggle_server, tmp_path):
    proj = tmp_path / "proj"
    (proj / "experiments").mkdir(parents=True)
    (proj / "experiments" / "0007_belka_small.py").write_text(
        "from molremote.experiments import experiment\n"
        "EXPERIMENT = experiment(task='belka', model={'name': 'cnn1d', 'embed_dim': 8}, folds={'n_folds': 3})\n"
    )
    (proj / "molremote.toml").write_text('[store]\nurl = "hf://molremote-tester/runs"\n')
    git(proj, "init", "-q")
    git(proj, "add", ".")
    git(proj, "commit", "-qm", "exp")
    env = {**os.environ, "MOLREMOTE_PROJECT": str(proj)}
    r = cli(
        "remote", "-e", "7", "--kaggle", "--all-folds", "--accelerator", "NvidiaTeslaT4", "--dry-run", env=env, cwd=proj
    )
    assert r.returncode == 0, r.stderr
    for f in range(3):
        assert f"mr-0007-f{f}-" in r.stdout
        folder = next((proj / ".molremote" / "kernels").glob(f"mr-0007-f{f}-*"))
        meta = json.loads((folder / "kernel-metadata.json").read_text())
        assert meta["id"].startswith(f"{OWNER}/") and meta["machine_shape"] == "NvidiaTeslaT4"
    assert "lines of base64 (the code bundle)" in r.stdout and "'store': 'hf://molremote-tester/runs'" in r.stdout
    assert kaggle_server.pushes == [] and kaggle_server.calls == []
    # an unknown accelerator is refused, naming the value and the known ones
    r = cli("remote", "-e", "7", "--kaggle", "--accelerator", "K80", "--dry-run", env=env, cwd=proj)
    assert r.returncode == 2 and "unknown Kaggle accelerator 'K80'" in r.stderr


def test_cli_remote_chain_pushes_sessions_until_complete(kenv, kaggle_server, tmp_path):
    """`molremote remote --kaggle --chain` through the entry point: session 1 stops at its deadline (exit 75),
    the chain pushes session 2, which completes; one job record per session, the last one complete."""
    proj = tmp_path / "proj"
    (proj / "experiments").mkdir(parents=True)
    (proj / "experiments" / "0007_belka_small.py").write_text(
        "from molremote.experiments import experiment\n"
        "EXPERIMENT = experiment(task='belka', model={'name': 'cnn1d', 'embed_dim': 8}, folds={'n_folds': 3})\n"
    )
    git(proj, "init", "-q")
    git(proj, "add", ".")
    git(proj, "commit", "-qm", "exp")
    env = {
        **os.environ,
        "MOLREMOTE_PROJECT": str(proj),
        "MOLREMOTE_JOBS": str(proj / ".molremote" / "jobs"),
        "MOLREMOTE_KAGGLE_STORE": f"file://{tmp_path / 'store'}",  # the kernel restores from and syncs to it
        "MOLREMOTE_KAGGLE_POLL_S": "0.1",
    }
    runtime = KaggleRuntime(kaggle_server, tmp_path / "kaggle", fake=fake_session([75, 0]))
    try:
        r = cli("remote", "-e", "7", "--kaggle", "--chain", env=env, cwd=proj)
    finally:
        runtime.close()
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(kaggle_server.pushes) == 2 and "session 2" in r.stdout + r.stderr
    recs = [json.loads(f.read_text()) for f in sorted((proj / ".molremote" / "jobs").glob("*.json"))]
    assert sorted(rec["state"] for rec in recs) == ["complete", "incomplete"], recs
    # bad knob value: a usage error naming the variable
    bad = cli("remote", "-e", "7", "--kaggle", "--dry-run", env={**env, "MOLREMOTE_KAGGLE_POLL_S": "soon"}, cwd=proj)
    assert bad.returncode == 2 and "MOLREMOTE_KAGGLE_POLL_S='soon'" in bad.stderr, bad.stderr
