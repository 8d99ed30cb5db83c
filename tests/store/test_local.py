"""LocalStore: push/pull round trips, changed-files-only, subsets, path safety, conflicts, listing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import KEY, make_run, set_manifest, tree_bytes

from molremote.errors import StoreError
from molremote.store import LocalStore, StoreConflictError, open_store
from molremote.store.ops import list_runs, pull_experiment, pull_run, push_run


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")


def test_push_pull_roundtrip_is_byte_identical(tmp_path, store):
    run = make_run(tmp_path / "a")
    summary = store.push(run, KEY)
    assert summary["uploaded"][-1] == "manifest.json"  # written last
    assert len(summary["uploaded"]) == 10 and summary["deleted"] == []
    assert summary["bytes"] == sum(len(v) for v in tree_bytes(run).values())
    dest = tmp_path / "b" / KEY
    assert store.pull(KEY, dest) == dest
    assert tree_bytes(dest) == tree_bytes(run)
    assert store.exists(KEY) and not store.exists("0620_text2mol_fatgcn/fold1-abc123")


def test_push_sends_only_changed_files(tmp_path, store):
    run = make_run(tmp_path / "a")
    store.push(run, KEY)
    stored = store.root / "runs" / KEY
    inode_best = (stored / "checkpoints/best.pt").stat().st_ino
    again = store.push(run, KEY)
    assert again["uploaded"] == [] and again["unchanged"] == 10 and again["bytes"] == 0
    (run / "checkpoints/last.pt").write_bytes(b"new weights")
    (run / "metrics.jsonl").open("ab").write(b'{"epoch": 5}\n')
    third = store.push(run, KEY)
    assert third["uploaded"] == ["checkpoints/last.pt", "metrics.jsonl"]
    assert (stored / "checkpoints/last.pt").read_bytes() == b"new weights"
    assert (stored / "checkpoints/best.pt").stat().st_ino == inode_best  # untouched, not rewritten


def test_push_deletes_removed_files_but_keeps_checkpoints(tmp_path, store):
    run = make_run(tmp_path / "a")
    store.push(run, KEY)
    (run / "predictions/test.parquet").unlink()
    (run / "checkpoints/best.pt").unlink()
    s = store.push(run, KEY)
    assert s["deleted"] == ["predictions/test.parquet"]
    stored = store.root / "runs" / KEY
    assert not (stored / "predictions/test.parquet").exists()
    assert (stored / "checkpoints/best.pt").is_file()


def test_push_skips_temp_files_prev_checkpoint_and_symlinks(tmp_path, store):
    run = make_run(tmp_path / "a")
    (run / "checkpoints/.last.pt.x1.tmp").write_bytes(b"half")
    (run / "checkpoints/last.prev.pt").write_bytes(b"old")
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the store")
    os.symlink(outside, run / "logs/link.txt")
    os.symlink(tmp_path, run / "linkdir")
    s = store.push(run, KEY)
    assert not any(".tmp" in p or "prev" in p or "link" in p for p in s["uploaded"])
    stored = tree_bytes(store.root / "runs" / KEY)
    assert b"not for the store" not in stored.values() and len(stored) == 10


def test_pull_only_subsets(tmp_path, store):
    store.push(make_run(tmp_path / "a"), KEY)
    got = {}
    for only in (["metrics"], ["checkpoints"], ["predictions"], ["metrics", "predictions"]):
        dest = tmp_path / "-".join(only)
        store.pull(KEY, dest, only=only)
        got[tuple(only)] = sorted(tree_bytes(dest))
    base = ["config.json", "manifest.json"]
    assert got[("metrics",)] == sorted(base + ["metrics.jsonl", "logs/train.log", "logs/empty.txt"])
    assert got[("checkpoints",)] == sorted(base + ["checkpoints/best.pt", "checkpoints/last.pt"])
    assert got[("predictions",)] == sorted(
        base + ["predictions/test.parquet", "predictions/valid.parquet", "submission.csv"]
    )
    assert set(got[("metrics", "predictions")]) == set(got[("metrics",)]) | set(got[("predictions",)])
    with pytest.raises(StoreError, match="unknown --only value.*'weights'"):
        store.pull(KEY, tmp_path / "x", only=["weights"])


def test_long_format_submission_comes_with_the_predictions(tmp_path, store):
    """A long-format task writes `submission.tsv` (CAFA): `pull --only predictions` brings it, metrics do not."""
    run = make_run(tmp_path / "a")
    (run / "submission.tsv").write_bytes(b"P12345\tGO:0008150\t0.500\n")
    store.push(run, KEY)
    store.pull(KEY, tmp_path / "p", only=["predictions"])
    store.pull(KEY, tmp_path / "m", only=["metrics"])
    assert (tmp_path / "p" / "submission.tsv").read_bytes() == (run / "submission.tsv").read_bytes()
    assert not (tmp_path / "m" / "submission.tsv").exists()


def test_pull_fetches_only_differing_files(tmp_path, store):
    run = make_run(tmp_path / "a")
    store.push(run, KEY)
    dest = tmp_path / "b" / KEY
    store.pull(KEY, dest)
    ino = (dest / "checkpoints/last.pt").stat().st_ino
    (dest / "metrics.jsonl").write_bytes(b"changed here")
    with pytest.raises(StoreError, match=r"changed here since the last sync: metrics.jsonl"):
        store.pull(KEY, dest)  # a local change is never overwritten silently
    assert (dest / "metrics.jsonl").read_bytes() == b"changed here"
    store.pull(KEY, dest, force=True)  # --force: kept in a dated backup first
    assert (dest / "checkpoints/last.pt").stat().st_ino == ino  # only the differing file was fetched
    assert (dest / "metrics.jsonl").read_bytes() == (run / "metrics.jsonl").read_bytes()
    [backup] = (dest / ".backups").iterdir()
    assert (backup / "metrics.jsonl").read_bytes() == b"changed here"
    # a file the store changed while the local copy stayed as last synced is simply updated
    (run / "submission.csv").write_bytes(b"id,y\n1,0.7\n")
    store.push(run, KEY)
    store.pull(KEY, dest)
    assert (dest / "submission.csv").read_bytes() == b"id,y\n1,0.7\n"


def test_pull_refuses_symlink_in_store_and_writes_nothing(tmp_path, store):
    store.push(make_run(tmp_path / "a"), KEY)
    stored = store.root / "runs" / KEY
    (tmp_path / "victim").mkdir()
    os.symlink(tmp_path / "victim", stored / "logs/evil")
    dest = tmp_path / "b"
    with pytest.raises(StoreError, match="symlink"):
        store.pull(KEY, dest)
    assert not dest.exists()


def test_pull_refuses_symlink_inside_dest(tmp_path, store):
    store.push(make_run(tmp_path / "a"), KEY)
    dest = tmp_path / "b"
    dest.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", dest / "checkpoints")
    with pytest.raises(StoreError, match="symlink"):
        store.pull(KEY, dest)
    assert list((tmp_path / "elsewhere").iterdir()) == [] and not (dest / "manifest.json").exists()


@pytest.mark.parametrize("key", ["../escape/fold0-x", "/abs/fold0-x", "a/../../b", "", ".hidden/x", "a//b"])
def test_invalid_keys_are_refused(tmp_path, store, key):
    with pytest.raises(StoreError, match="invalid run key"):
        store.push(make_run(tmp_path / "a"), key)
    assert not (store.root / "runs").exists()


def test_conflicting_run_uid_is_refused_unless_forced(tmp_path, store):
    a = make_run(tmp_path / "a", run_uid="uid-a", host="box-a")
    b = make_run(tmp_path / "b", run_uid="uid-b", host="box-b", seed=1)
    store.push(a, KEY)
    with pytest.raises(StoreConflictError) as e:
        store.push(b, KEY)
    msg = str(e.value)
    assert all(s in msg for s in ("uid-a", "uid-b", "box-a", "box-b", KEY, "--force"))
    assert e.value.exit_code == 5
    assert tree_bytes(store.root / "runs" / KEY) == tree_bytes(a)  # nothing of b got in
    store.push(b, KEY, force=True)
    assert tree_bytes(store.root / "runs" / KEY) == tree_bytes(b)


def test_push_needs_manifest_with_run_uid(tmp_path, store):
    run = make_run(tmp_path / "a")
    set_manifest(run, run_uid=None)
    with pytest.raises(StoreError, match="run_uid"):
        store.push(run, KEY)
    (run / "manifest.json").unlink()
    with pytest.raises(StoreError, match="manifest.json is missing"):
        store.push(run, KEY)


def test_list_runs_and_read_manifest(tmp_path, store):
    keys = [KEY, "0620_text2mol_fatgcn/fold1-abc123", "0007_belka/fold0-ff00"]
    for i, k in enumerate(keys):
        store.push(make_run(tmp_path / "src", k, run_uid=f"u{i}"), k)
    assert [r["key"] for r in store.list_runs()] == sorted(keys)
    for exp in (620, "620", "0620", "0620_text2mol_fatgcn"):
        rows = store.list_runs(exp)
        assert [r["key"] for r in rows] == sorted(keys[:2])
        assert [r["manifest"]["run_uid"] for r in rows] == ["u0", "u1"]
    assert store.list_runs(621) == []
    assert store.read_manifest(keys[2])["run_uid"] == "u2"
    assert store.read_manifest("0007_belka/fold9-ff00") is None


def test_open_store_urls(tmp_path, monkeypatch):
    assert open_store(str(tmp_path / "s")).root == tmp_path / "s"
    assert open_store(f"file://{tmp_path}/s2").root == tmp_path / "s2"
    monkeypatch.setenv("MOLREMOTE_STORE", str(tmp_path / "env"))
    (tmp_path / "empty.toml").write_text("")
    monkeypatch.setenv("MOLREMOTE_CONFIG", str(tmp_path / "empty.toml"))
    assert open_store(None).root == tmp_path / "env"
    monkeypatch.delenv("MOLREMOTE_STORE")
    monkeypatch.setenv("MOLREMOTE_PROJECT", str(tmp_path / "proj"))
    assert open_store("").root == tmp_path / "proj" / ".molremote" / "store"
    with pytest.raises(StoreError, match="unknown scheme"):
        open_store("s3://bucket/x")


def test_importing_store_loads_no_heavy_client():
    code = (
        "import sys, molremote.store, molremote.store.ops, molremote.store.sync; "
        "print(sorted(m for m in ('torch', 'huggingface_hub') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- ops: what the CLI commands call -------------------------------------------------------------------
def test_ops_push_pull_and_merged_listing(tmp_path, store):
    runs = tmp_path / "runs"
    run = make_run(runs, run_uid="u-main", updated_at="2026-11-02T00:00:00+00:00")
    other = make_run(runs, "0620_text2mol_fatgcn/fold1-abc123", run_uid="u-f1")
    assert push_run(run, store=store, runs_root=runs)["key"] == KEY
    remote_only = make_run(tmp_path / "elsewhere", "0620_text2mol_fatgcn/fold2-abc123", run_uid="u-f2")
    store.push(remote_only, "0620_text2mol_fatgcn/fold2-abc123")
    set_manifest(run, updated_at="2026-11-03T00:00:00+00:00")
    rows = {r["key"]: r for r in list_runs(620, store=store, runs_root=runs)}
    assert {k: r["where"] for k, r in rows.items()} == {
        KEY: "local-newer",
        other.relative_to(runs).as_posix(): "local-only",
        "0620_text2mol_fatgcn/fold2-abc123": "store-only",
    }
    assert rows[KEY]["manifest"]["updated_at"].startswith("2026-11-03")
    # pulling over a newer local copy is refused; over a different run too
    with pytest.raises(StoreConflictError, match="newer"):
        pull_run(KEY, store=store, runs_root=runs)
    set_manifest(run, run_uid="u-other")
    with pytest.raises(StoreConflictError, match="another run"):
        pull_run(KEY, store=store, runs_root=runs)
    pull_run(KEY, store=store, runs_root=runs, force=True)
    assert __import__("json").loads((run / "manifest.json").read_text())["run_uid"] == "u-main"
    paths = pull_experiment(620, fold=2, store=store, runs_root=runs, only=["metrics"])
    assert paths == [runs / "0620_text2mol_fatgcn/fold2-abc123"]
    assert not (paths[0] / "checkpoints").exists() and (paths[0] / "metrics.jsonl").is_file()
    with pytest.raises(StoreError, match="no run of experiment 620 fold 7"):
        pull_experiment(620, fold=7, store=store, runs_root=runs)


def test_restore_for_resume(tmp_path, store):
    from molremote.store.ops import restore_for_resume

    run = make_run(tmp_path / "a", run_uid="u-1")
    store.push(run, KEY)
    dest = tmp_path / "runs" / KEY
    assert restore_for_resume(store, "0620_text2mol_fatgcn/fold4-abc123", dest) is None and not dest.exists()
    assert restore_for_resume(store, KEY, dest)["run_uid"] == "u-1"
    assert tree_bytes(dest) == tree_bytes(run)
    with pytest.raises(StoreError, match="already holds a run"):
        restore_for_resume(store, KEY, dest)
