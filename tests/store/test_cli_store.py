"""push / pull / runs through the real entry point (`python -m molremote`), both stores, real files and
processes: flipped bytes, local edits, a run held by another process, a missing store folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import KEY, TOKEN, make_run, tree_bytes

from tests.conftest import ROOT


def mr(project: Path, *args: str, store: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {**os.environ, "MOLREMOTE_PROJECT": str(project), "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    e.pop("MOLREMOTE_STORE", None)
    if store is not None:
        e["MOLREMOTE_STORE"] = store
    return subprocess.run(
        [sys.executable, "-m", "molremote", *args], cwd=project, env=e, capture_output=True, text=True, timeout=120
    )


def new_project(root: Path) -> Path:
    (root / "experiments").mkdir(parents=True)
    (root / "runs").mkdir()
    return root


def test_folder_store_push_verified_pull_local_edits_and_force(tmp_path):
    a, b = new_project(tmp_path / "a"), new_project(tmp_path / "b")
    store = str(tmp_path / "store")
    run = make_run(a / "runs")
    r = mr(a, "push", "-e", "620", store=store)
    assert r.returncode == 0, r.stderr  # was: TypeError after uploading
    assert "10 uploaded, 0 deleted, 0 unchanged" in r.stdout
    index = json.loads((tmp_path / "store/runs" / KEY / ".index.json").read_text())["files"]
    assert set(index) == set(tree_bytes(run)) and len(index["checkpoints/best.pt"]["sha256"]) == 64

    # one flipped byte in the store: refused, exit 5, nothing written in the fresh clone
    stored_best = tmp_path / "store/runs" / KEY / "checkpoints/best.pt"
    good = stored_best.read_bytes()
    stored_best.write_bytes(good[:1000] + bytes([good[1000] ^ 1]) + good[1001:])
    r = mr(b, "pull", "-e", "620", store=store)
    assert r.returncode == 5 and "checkpoints/best.pt" in r.stderr and "sha256" in r.stderr, r.stderr
    assert not (b / "runs" / KEY).exists() and list((b / "runs").rglob("*")) == []
    stored_best.write_bytes(good)
    r = mr(b, "pull", "-e", "620", store=store)
    assert r.returncode == 0, r.stderr
    assert tree_bytes(b / "runs" / KEY) == tree_bytes(run)

    # local edits since the last sync are never overwritten silently
    sub, met = b / "runs" / KEY / "submission.csv", b / "runs" / KEY / "metrics.jsonl"
    sub.write_text("id,y\n1,0.9\n")
    with open(met, "a") as f:
        f.write('{"epoch": 9}\n')
    r = mr(b, "pull", "-e", "620", store=store)
    assert r.returncode == 5 and "metrics.jsonl, submission.csv" in r.stderr and "--force" in r.stderr, r.stderr
    assert sub.read_text() == "id,y\n1,0.9\n"
    r = mr(b, "pull", "-e", "620", "--force", store=store)
    assert r.returncode == 0, r.stderr
    assert sub.read_bytes() == (run / "submission.csv").read_bytes()
    [backup] = (b / "runs" / KEY / ".backups").iterdir()
    assert (backup / "submission.csv").read_text() == "id,y\n1,0.9\n" and (backup / "metrics.jsonl").is_file()

    # runs through the entry point: the same run in both places
    r = mr(b, "runs", "--json", store=store)
    assert r.returncode == 0, r.stderr
    assert [(x["key"], x["where"]) for x in json.loads(r.stdout)] == [(KEY, "same")]


def test_pull_refuses_a_run_held_by_another_process(tmp_path):
    a, b = new_project(tmp_path / "a"), new_project(tmp_path / "b")
    store = str(tmp_path / "store")
    make_run(a / "runs")
    assert mr(a, "push", "-e", "620", store=store).returncode == 0
    dest = b / "runs" / KEY
    dest.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from molremote.runlock import RunLock\n"
                f"lock = RunLock({str(dest)!r}, 'train').acquire(); print('held', flush=True); time.sleep(120)"
            ),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        r = mr(b, "pull", "-e", "620", store=store)
        assert r.returncode == 9 and f"pid {holder.pid} on " in r.stderr and "train" in r.stderr, r.stderr
        assert [p.name for p in dest.iterdir()] == [".lock"]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    r = mr(b, "pull", "-e", "620", store=store)  # the OS dropped the dead holder's lock
    assert r.returncode == 0, r.stderr


def test_missing_store_folder_says_so(tmp_path):
    a = new_project(tmp_path / "a")
    r = mr(a, "pull", "-e", "1", store=str(tmp_path / "no-such-store"))
    assert r.returncode == 5 and "store folder" in r.stderr and "does not exist" in r.stderr, r.stderr
    assert "no run of experiment" not in r.stderr


@pytest.mark.integration
def test_hub_store_push_and_pull_through_the_cli(tmp_path, hub):
    a, b = new_project(tmp_path / "a"), new_project(tmp_path / "b")
    env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    run = make_run(a / "runs")
    r = mr(a, "push", "-e", "620", store="hf://tester/proj-runs", env=env)
    assert r.returncode == 0 and "10 uploaded" in r.stdout, r.stderr
    r = mr(b, "pull", "-e", "620", store="hf://tester/proj-runs", env=env)
    assert r.returncode == 0, r.stderr
    assert tree_bytes(b / "runs" / KEY) == tree_bytes(run)
    (b / "runs" / KEY / "logs/train.log").write_text("edited here\n")
    (run / "logs/train.log").write_text("epoch 0\nepoch 1\n")
    time.sleep(1.1)  # a newer updated_at for the stored manifest
    assert mr(a, "push", "-e", "620", store="hf://tester/proj-runs", env=env).returncode == 0
    r = mr(b, "pull", "-e", "620", store="hf://tester/proj-runs", env=env)
    assert r.returncode == 5 and "logs/train.log" in r.stderr, r.stderr
    assert (b / "runs" / KEY / "logs/train.log").read_text() == "edited here\n"

    # bytes damaged at rest on the Hub side (the tree still lists the old blob id): refused, nothing written
    entry = hub.state.tree_at("models", "tester/proj-runs")[1][f"runs/{KEY}/checkpoints/best.pt"]
    served = hub.state._object(entry["sha256"])  # the stored LFS object; the tree keeps its sha256
    data = served.read_bytes()
    served.write_bytes(data[:500] + bytes([data[500] ^ 1]) + data[501:])
    c = new_project(tmp_path / "c")
    r = mr(c, "pull", "-e", "620", store="hf://tester/proj-runs", env=env)
    assert r.returncode == 5 and "checkpoints/best.pt" in r.stderr and "does not match" in r.stderr, r.stderr
    assert list((c / "runs").rglob("*")) == []


def test_push_pull_runs_never_import_torch(tmp_path):
    a = new_project(tmp_path / "a")
    make_run(a / "runs")
    for cmd in (["push", "-e", "620"], ["pull", "-e", "620", "--force"], ["runs", "--json"]):
        code = (
            f"import sys; sys.argv = ['molremote', *{cmd!r}]\nfrom molremote.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "sys.stderr.write('TORCH' if 'torch' in sys.modules else 'CLEAN'); sys.exit(code)"
        )
        env = {
            **os.environ,
            "MOLREMOTE_PROJECT": str(a),
            "PYTHONPATH": str(ROOT),
            "MOLREMOTE_STORE": str(tmp_path / "store"),
        }
        r = subprocess.run([sys.executable, "-c", code], cwd=a, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stderr.endswith("CLEAN"), (cmd, r.stderr[-500:])


def test_pull_and_push_show_a_progress_bar_on_a_terminal(tmp_path):
    a, b = new_project(tmp_path / "a"), new_project(tmp_path / "b")
    make_run(a / "runs")
    env = {
        **os.environ,
        "MOLREMOTE_PROJECT": str(a),
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "120",
        "MOLREMOTE_STORE": str(tmp_path / "store"),
        "TERM": "xterm",
    }
    outputs = []
    for project, cmd in ((a, "push"), (b, "pull")):
        master, slave = os.openpty()  # stderr is a terminal: the bar is drawn there
        p = subprocess.Popen(
            [sys.executable, "-m", "molremote", cmd, "-e", "620"],
            cwd=project,
            env={**env, "MOLREMOTE_PROJECT": str(project)},
            stdout=subprocess.PIPE,
            stderr=slave,
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        assert p.wait(timeout=60) == 0
        os.close(master)
        outputs.append(b"".join(chunks).decode(errors="replace"))
    assert f"push {KEY} (10 files)" in outputs[0] and "kB" in outputs[0], outputs[0][-2000:]
    assert f"pull {KEY} (10 files)" in outputs[1] and "kB" in outputs[1], outputs[1][-2000:]
