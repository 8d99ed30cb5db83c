"""HubStore with the real huggingface_hub client against the loopback Hub server."""

from __future__ import annotations

import pytest
from conftest import KEY, make_run, tree_bytes

from molremote.errors import StoreError
from molremote.store import StoreConflictError, open_store

pytestmark = pytest.mark.integration
REPO = "tester/proj-runs"


def stored(hub, key=KEY) -> dict[str, bytes]:
    return hub.state.snapshot(REPO, f"runs/{key}")


def test_push_pull_roundtrip_into_empty_dir(tmp_path, hub, hub_store):
    run = make_run(tmp_path / "a")
    s = hub_store.push(run, KEY)
    assert s["commit"] and len(s["uploaded"]) == 10
    meta = hub.state._meta("models", REPO)
    assert meta["private"] is True  # created private on first push
    assert [len(c["files"]) for c in meta["commits"]] == [0, 10]  # creation + one commit for the whole run
    assert stored(hub) == tree_bytes(run)
    dest = tmp_path / "fresh" / KEY
    assert hub_store.pull(KEY, dest) == dest
    assert tree_bytes(dest) == tree_bytes(run)  # byte-identical, and no .cache or staging files left behind
    assert [p.name for p in (tmp_path / "fresh" / KEY).parent.iterdir()] == ["fold0-abc123"]


def test_only_changed_files_are_committed(tmp_path, hub, hub_store):
    run = make_run(tmp_path / "a")
    hub_store.push(run, KEY)
    n = len(hub.state.commits(REPO))
    again = hub_store.push(run, KEY)
    assert again["commit"] is None and again["uploaded"] == [] and len(hub.state.commits(REPO)) == n
    (run / "checkpoints/last.pt").write_bytes(b"epoch 2 weights")
    (run / "predictions/test.parquet").unlink()
    (run / "checkpoints/best.pt").unlink()  # checkpoints stay in the store
    s = hub_store.push(run, KEY)
    last = hub.state.commits(REPO)[-1]
    assert len(hub.state.commits(REPO)) == n + 1
    assert last["files"] == [f"runs/{KEY}/checkpoints/last.pt"]
    assert last["deleted"] == [f"runs/{KEY}/predictions/test.parquet"]
    assert s["uploaded"] == ["checkpoints/last.pt"] and s["deleted"] == ["predictions/test.parquet"]
    assert "checkpoints/best.pt" in stored(hub)


def test_file_names_with_glob_characters_match_only_themselves(tmp_path, hub, hub_store):
    run = make_run(tmp_path / "a")
    (run / "logs/a[1].txt").write_bytes(b"bracket")
    (run / "logs/a1.txt").write_bytes(b"plain")
    hub_store.push(run, KEY)
    (run / "logs/a[1].txt").write_bytes(b"bracket v2")
    hub_store.push(run, KEY)
    assert hub.state.commits(REPO)[-1]["files"] == [f"runs/{KEY}/logs/a[1].txt"]
    assert stored(hub) == tree_bytes(run)


def test_pull_only_subsets(tmp_path, hub, hub_store):
    hub_store.push(make_run(tmp_path / "a"), KEY)
    dest = tmp_path / "m"
    hub_store.pull(KEY, dest, only=["metrics"])
    assert sorted(tree_bytes(dest)) == [
        "config.json",
        "logs/empty.txt",
        "logs/train.log",
        "manifest.json",
        "metrics.jsonl",
    ]
    n_resolve, n_cdn = hub.state.calls["resolve"], hub.state.calls["cdn"]
    hub_store.pull(KEY, dest, only=["checkpoints"])  # adds the checkpoints, re-downloads nothing else
    assert sorted(tree_bytes(dest))[:2] == ["checkpoints/best.pt", "checkpoints/last.pt"]
    # checkpoints are LFS files: a HEAD on resolve (redirected, with the linked etag/size), then a GET on the CDN
    assert (hub.state.calls["resolve"] - n_resolve, hub.state.calls["cdn"] - n_cdn) == (2, 2)


@pytest.mark.parametrize(
    "evil", [f"runs/{KEY}/../../../escaped.txt", f"runs/{KEY}//tmp/abs.txt", f"runs/{KEY}/logs/../../../../x.txt"]
)
def test_pull_refuses_paths_escaping_dest(tmp_path, hub, hub_store, evil):
    hub_store.push(make_run(tmp_path / "a"), KEY)
    hub.state.put_raw(REPO, evil, b"pwned")
    dest = tmp_path / "d" / "e" / KEY
    with pytest.raises(StoreError, match="unsafe path"):
        hub_store.pull(KEY, dest, only=["metrics"])  # refused even when the bad file is outside the subset
    assert not (tmp_path / "d").exists()
    assert not any(p.read_bytes() == b"pwned" for p in tmp_path.rglob("*") if p.is_file() and "hub-root" not in str(p))


def test_conflicting_run_is_refused_unless_forced(tmp_path, hub, hub_store):
    a = make_run(tmp_path / "a", run_uid="uid-a", host="kaggle-1")
    b = make_run(tmp_path / "b", run_uid="uid-b", host="slurm-node7", seed=3)
    hub_store.push(a, KEY)
    n = len(hub.state.commits(REPO))
    with pytest.raises(StoreConflictError) as e:
        hub_store.push(b, KEY)
    assert all(s in str(e.value) for s in ("uid-a", "uid-b", "kaggle-1", "slurm-node7"))
    assert len(hub.state.commits(REPO)) == n and stored(hub) == tree_bytes(a)
    hub_store.push(b, KEY, force=True)
    assert stored(hub) == tree_bytes(b)


@pytest.mark.parametrize("mode", ["500", "drop", "drop_after"])
def test_commit_failures_are_retried_without_losing_anything(tmp_path, hub, hub_store, mode):
    run = make_run(tmp_path / "a")
    hub.state.fail_next("commit", n=1, mode=mode)
    s = hub_store.push(run, KEY)
    assert stored(hub) == tree_bytes(run)
    # 500 / drop: the failed attempt and the store's retry. drop_after: the commit landed with its reply lost,
    # the store's re-read finds nothing left to upload and does not commit again (no duplicate commit)
    assert hub.state.calls["commit"] == (1 if mode == "drop_after" else 2)
    assert [len(c["files"]) for c in hub.state.commits(REPO)] == [0, 10]
    assert s["commit"] == hub.state.commits(REPO)[-1]["oid"] and len(s["uploaded"]) == 10
    dest = tmp_path / "back"
    hub_store.pull(KEY, dest)
    assert tree_bytes(dest) == tree_bytes(run)


def test_push_failure_is_a_store_error_and_store_stays_consistent(tmp_path, hub, hub_store):
    run = make_run(tmp_path / "a")
    hub_store.push(run, KEY)
    before = stored(hub)
    (run / "checkpoints/last.pt").write_bytes(b"newer")
    hub.state.fail_next("info", n=1, mode="500")  # repo_info is not retried by the client
    with pytest.raises(StoreError, match="HTTP 500"):
        hub_store.push(run, KEY)
    assert stored(hub) == before
    hub_store.push(run, KEY)
    assert stored(hub) == tree_bytes(run)


def test_list_runs_read_manifest_exists(tmp_path, hub, hub_store):
    assert hub_store.list_runs() == [] and hub_store.read_manifest(KEY) is None  # repo not created yet
    keys = [KEY, "0620_text2mol_fatgcn/fold1-abc123", "0007_belka/fold0-ff00"]
    for i, k in enumerate(keys):
        hub_store.push(make_run(tmp_path / "src", k, run_uid=f"u{i}"), k)
    assert [r["key"] for r in hub_store.list_runs()] == sorted(keys)
    rows = hub_store.list_runs(620)
    assert [(r["key"], r["manifest"]["run_uid"]) for r in rows] == [(KEY, "u0"), (keys[1], "u1")]
    assert hub_store.exists(keys[2]) and not hub_store.exists("0007_belka/fold1-ff00")
    with pytest.raises(StoreError, match="not in store"):
        hub_store.pull("0007_belka/fold1-ff00", tmp_path / "x")


def test_token_and_endpoint_resolution(tmp_path, hub, monkeypatch):
    hub.state.token = "hf_right"
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(StoreError, match="HTTP 401.*HF_TOKEN"):
        open_store("hf://tester/p", endpoint=hub.url).push(make_run(tmp_path / "a"), KEY)
    monkeypatch.setenv("HF_TOKEN", "hf_right")
    monkeypatch.setenv("HF_ENDPOINT", hub.url)  # read when the store is opened, not at client import
    st = open_store("hf://p")  # no owner: the token's user
    assert st.push(make_run(tmp_path / "b"), KEY)["commit"]
    assert st.repo_id == "tester/p" and st.url == "hf://p"
    ds = open_store("hf://datasets/tester/d", endpoint=hub.url)
    ds.push(make_run(tmp_path / "c"), KEY)
    assert "manifest.json" in hub.state.snapshot("tester/d", f"runs/{KEY}", repo_type="dataset")
