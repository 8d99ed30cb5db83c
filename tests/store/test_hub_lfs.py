"""The Hub's strict side, met by the real huggingface_hub client and HubStore: tokens, the LFS upload path,
stale parents (412) and the store's retry, past revisions, change detection on LFS files.

The LFS path runs because tests set HF_HUB_DISABLE_XET=1 (tests/conftest.py): with hf_xet installed the client
would upload LFS-mode files through Xet instead, which the loopback Hub does not speak (see docs/architecture.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import urllib.error
import urllib.request

import pytest
from conftest import KEY, TOKEN, make_run, tree_bytes

from molremote.errors import StoreError
from molremote.store.base import hash_file
from molremote.store.hub import HEAD_MOVED_RETRIES, _same

pytestmark = pytest.mark.integration
REPO = "tester/proj-runs"
LFS_FILES = ["checkpoints/best.pt", "checkpoints/last.pt", "predictions/test.parquet", "predictions/valid.parquet"]


def call(
    url: str, *, method: str = "GET", body: bytes | None = None, token: str | None = TOKEN, headers: dict | None = None
) -> tuple[int, bytes]:
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def api(hub):
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub.url, token=TOKEN)


def test_every_api_call_needs_the_token(hub, hub_store, tmp_path):
    hub_store.push(make_run(tmp_path / "a"), KEY)
    for path in (
        "/api/whoami-v2",
        f"/api/models/{REPO}",
        f"/api/models/{REPO}/tree/main",
        f"/{REPO}/resolve/main/runs/{KEY}/manifest.json",
    ):
        assert call(hub.url + path, token=None)[0] == 401, path
        assert call(hub.url + path, token="hf_wrong")[0] == 401, path
        assert call(hub.url + path)[0] == 200, path
    from hub_server import HubServer

    with pytest.raises(ValueError, match="token"):
        HubServer(tmp_path / "x", token="")


def test_preupload_sends_binary_large_and_patterned_files_to_lfs(hub, hub_store, tmp_path):
    hub_store._ensure_repo()
    files = {
        "a.pt": b"text but a checkpoint name",
        "b.parquet": b"PAR1",
        "w/model.safetensors": b"{}",
        "x.bin": b"x",
        "notes.txt": b"plain text",
        "blob.txt": b"\x00\x01\x02",
        "m.json": b'{"a": 1}',
        "big.txt": b"a" * 512,
    }
    sizes = {**{k: len(v) for k, v in files.items()}, "big.txt": 10 * 1024 * 1024 + 1}
    payload = {
        "files": [{"path": p, "sample": base64.b64encode(d[:512]).decode(), "size": sizes[p]} for p, d in files.items()]
    }
    status, body = call(
        f"{hub.url}/api/models/{REPO}/preupload/main",
        method="POST",
        body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 200
    modes = {f["path"]: f["uploadMode"] for f in json.loads(body)["files"]}
    assert modes == {
        "a.pt": "lfs",
        "b.parquet": "lfs",
        "w/model.safetensors": "lfs",
        "x.bin": "lfs",
        "notes.txt": "regular",
        "blob.txt": "lfs",
        "m.json": "regular",
        "big.txt": "lfs",
    }


def test_push_uploads_checkpoints_and_parquet_through_lfs(hub, hub_store, tmp_path):
    run = make_run(tmp_path / "a")
    s = hub_store.push(run, KEY)
    # one batch call, one PUT + one verify per LFS file, one commit holding 4 lfsFile + 6 file ops
    assert {k: hub.state.calls[k] for k in ("lfs_batch", "lfs_upload", "lfs_verify", "commit")} == {
        "lfs_batch": 1,
        "lfs_upload": 4,
        "lfs_verify": 4,
        "commit": 1,
    }
    tree = hub.state.tree_at("models", REPO)[1]
    assert sorted(p[len(f"runs/{KEY}/") :] for p, e in tree.items() if e["lfs"]) == LFS_FILES
    assert len(s["uploaded"]) == 10 and hub.state.snapshot(REPO, f"runs/{KEY}") == tree_bytes(run)
    # tree and paths-info carry the LFS sha256 and the real size; the blob id is the pointer's
    entries = {e.path: e for e in api(hub).list_repo_tree(REPO, f"runs/{KEY}", recursive=True)}
    info = {e.path: e for e in api(hub).get_paths_info(REPO, [f"runs/{KEY}/{r}" for r in LFS_FILES + ["config.json"]])}
    for rel in LFS_FILES:
        local = hash_file(run / rel)
        for e in (entries[f"runs/{KEY}/{rel}"], info[f"runs/{KEY}/{rel}"]):
            assert (e.lfs.sha256, e.lfs.size, e.size) == (local.sha256, local.size, local.size)
            assert e.blob_id != local.git_sha1 and _same(local, e)
    assert info[f"runs/{KEY}/config.json"].lfs is None
    assert info[f"runs/{KEY}/config.json"].blob_id == hash_file(run / "config.json").git_sha1
    # resolve: a redirect to another host with the linked etag and size; the client reads those
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    meta = get_hf_file_metadata(hf_hub_url(REPO, f"runs/{KEY}/checkpoints/last.pt", endpoint=hub.url), token=TOKEN)
    assert (meta.etag, meta.size, meta.commit_hash) == (
        hash_file(run / "checkpoints/last.pt").sha256,
        300_000,
        s["commit"],
    )
    assert meta.location.startswith(hub.url.replace("127.0.0.1", "localhost") + "/lfs-cdn/")


def test_lfs_and_commit_rules_are_enforced(hub, hub_store, tmp_path):
    hub_store.push(make_run(tmp_path / "a"), KEY)
    head = hub.state.head("models", REPO)
    commit_url = f"{hub.url}/api/models/{REPO}/commit/main"
    ndjson = lambda *lines: b"\n".join(json.dumps(x).encode() for x in lines)  # noqa: E731
    header = {"key": "header", "value": {"summary": "x", "parentCommit": head}}
    regular = {
        "key": "file",
        "value": {"path": "ok.txt", "content": base64.b64encode(b"ok").decode(), "encoding": "base64"},
    }
    assert call(commit_url, method="POST", body=ndjson(regular))[0] == 400  # no header
    assert call(commit_url, method="POST", body=ndjson(regular, header))[0] == 400  # header not first
    binary = {
        "key": "file",
        "value": {"path": "w.txt", "content": base64.b64encode(b"\x00\xff").decode(), "encoding": "base64"},
    }
    assert call(commit_url, method="POST", body=ndjson(header, binary))[0] == 400  # binary must go to LFS
    missing = {"key": "lfsFile", "value": {"path": "m.pt", "algo": "sha256", "oid": "0" * 64, "size": 3}}
    assert call(commit_url, method="POST", body=ndjson(header, missing))[0] == 422  # never uploaded
    stale = {"key": "header", "value": {"summary": "x", "parentCommit": "f" * 40}}
    assert call(commit_url, method="POST", body=ndjson(stale, regular))[0] == 412
    assert hub.state.head("models", REPO) == head  # nothing of the refused commits landed
    # signed storage URLs: a wrong signature, wrong content, or a forwarded token are refused
    data = b"weights"
    oid = hashlib.sha256(data).hexdigest()
    batch = {
        "operation": "upload",
        "transfers": ["basic"],
        "objects": [{"oid": oid, "size": len(data)}],
        "hash_algo": "sha256",
    }
    status, body = call(
        f"{hub.url}/{REPO}.git/info/lfs/objects/batch",
        method="POST",
        body=json.dumps(batch).encode(),
        headers={"Content-Type": "application/vnd.git-lfs+json"},
    )
    assert status == 200
    actions = json.loads(body)["objects"][0]["actions"]
    put = actions["upload"]["href"]
    assert call(put.replace("Signature=", "Signature=0"), method="PUT", body=data, token=None)[0] == 403
    assert call(put, method="PUT", body=data, token=TOKEN)[0] == 400  # S3: one auth mechanism only
    assert call(put, method="PUT", body=b"other", token=None)[0] == 400  # content does not hash to oid
    lfs_op = {"key": "lfsFile", "value": {"path": "w.pt", "algo": "sha256", "oid": oid, "size": len(data)}}
    assert call(put, method="PUT", body=data, token=None)[0] == 200
    assert call(commit_url, method="POST", body=ndjson(header, lfs_op))[0] == 422  # uploaded, not verified
    verify = json.dumps({"oid": oid, "size": len(data)}).encode()
    assert call(actions["verify"]["href"], method="POST", body=verify, token=None)[0] == 401
    assert call(actions["verify"]["href"], method="POST", body=verify)[0] == 200
    assert call(commit_url, method="POST", body=ndjson(header, lfs_op))[0] == 200
    assert hub.state.snapshot(REPO)["w.pt"] == data
    # and the Xet route says what to do instead of failing obscurely
    status, body = call(f"{hub.url}/api/models/{REPO}/xet-write-token/main")
    assert status == 501 and b"HF_HUB_DISABLE_XET=1" in body


def test_a_moved_head_is_retried_by_the_store(hub, hub_store, tmp_path):
    run = make_run(tmp_path / "a")
    hub.state.move_head_before_commit(2)  # two other machines commit just before our first two attempts
    s = hub_store.push(run, KEY)
    assert hub.state.calls["commit"] == 3
    summaries = [c["summary"] for c in hub.state.commits(REPO)]
    assert summaries[:3] == ["initial commit", "raw entry", "raw entry"] and summaries[3].startswith("molremote push")
    assert s["commit"] == hub.state.commits(REPO)[-1]["oid"]
    snap = hub.state.snapshot(REPO)
    assert sorted(p for p in snap if p.startswith("elsewhere/")) == ["elsewhere/1.txt", "elsewhere/2.txt"]
    assert hub.state.snapshot(REPO, f"runs/{KEY}") == tree_bytes(run)


def test_a_head_that_keeps_moving_is_a_clear_error(hub, hub_store, tmp_path):
    hub.state.move_head_before_commit(HEAD_MOVED_RETRIES)
    with pytest.raises(StoreError, match=f"kept changing during {HEAD_MOVED_RETRIES} attempts"):
        hub_store.push(make_run(tmp_path / "a"), KEY)
    assert hub.state.calls["commit"] == HEAD_MOVED_RETRIES
    assert not any(p.startswith("runs/") for p in hub.state.snapshot(REPO))


def test_past_revisions_resolve_to_their_own_content(hub, hub_store, tmp_path):
    run = make_run(tmp_path / "a")
    first = hub_store.push(run, KEY)["commit"]
    old = tree_bytes(run)
    (run / "checkpoints/last.pt").write_bytes(b"\x00epoch 2")  # LFS
    (run / "metrics.jsonl").write_bytes(b'{"epoch": 9}\n')  # regular
    second = hub_store.push(run, KEY)["commit"]
    assert first != second
    for rel in ("checkpoints/last.pt", "metrics.jsonl"):
        for rev, want in ((first, old[rel]), (second, (run / rel).read_bytes()), ("main", (run / rel).read_bytes())):
            got = api(hub).hf_hub_download(REPO, f"runs/{KEY}/{rel}", revision=rev, local_dir=tmp_path / f"dl-{rev}")
            assert open(got, "rb").read() == want, (rel, rev)
    assert hub.state.snapshot(REPO, f"runs/{KEY}", rev=first) == old
    status, _ = call(f"{hub.url}/api/models/{REPO}/revision/{'e' * 40}")
    assert status == 404


def test_change_detection_on_lfs_files(hub, hub_store, tmp_path):
    run = make_run(tmp_path / "a")
    hub_store.push(run, KEY)
    again = hub_store.push(run, KEY)  # LFS entries compared by sha256: nothing re-sent
    assert again["uploaded"] == [] and again["commit"] is None and hub.state.calls["lfs_upload"] == 4
    last = run / "checkpoints/last.pt"
    data = bytearray(last.read_bytes())
    data[1000] ^= 0xFF  # same size, one byte changed: only the hash can tell
    last.write_bytes(bytes(data))
    s = hub_store.push(run, KEY)
    assert s["uploaded"] == ["checkpoints/last.pt"] and hub.state.calls["lfs_upload"] == 5
    # pull: an unchanged LFS file is kept, a same-size corrupted one is downloaded again
    dest = tmp_path / "b" / KEY
    hub_store.pull(KEY, dest)
    n_cdn = hub.state.calls["cdn"]
    best = dest / "checkpoints/best.pt"
    bad = bytearray(best.read_bytes())
    bad[0] ^= 0xFF
    best.write_bytes(bytes(bad))
    with pytest.raises(StoreError, match="changed here since the last sync: checkpoints/best.pt"):
        hub_store.pull(KEY, dest)  # a local change is never overwritten silently
    hub_store.pull(KEY, dest, force=True)  # --force: the changed file goes to .backups/<time>/ first
    backups = list((dest / ".backups").rglob("best.pt"))
    assert len(backups) == 1 and backups[0].read_bytes() == bytes(bad)
    shutil.rmtree(dest / ".backups")
    assert hub.state.calls["cdn"] - n_cdn == 1 and tree_bytes(dest) == tree_bytes(run)


def test_with_xet_enabled_the_push_fails_loudly_not_silently(hub, hub_store, tmp_path, monkeypatch):
    """The loopback Hub speaks LFS only: if a test forgot HF_HUB_DISABLE_XET, the client's Xet upload fails on the
    token route (501) instead of a push that seems to work."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", False)
    with pytest.raises(StoreError, match=r"501.*xet-write-token"):
        hub_store.push(make_run(tmp_path / "a"), KEY)
    assert hub.state.calls["xet_token"] >= 1 and hub.state.calls["commit"] == 0
    assert len(hub.state.commits(REPO)) == 1  # only the creation commit
