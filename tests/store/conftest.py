"""Fixtures for store tests: hand-built run folders and a loopback Hub server."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "servers"))
from hub_server import HubServer  # noqa: E402

KEY = "0620_text2mol_fatgcn/fold0-abc123"
TOKEN = "hf_test_token"


def make_run(
    root: Path,
    key: str = KEY,
    *,
    run_uid: str | None = None,
    host: str = "box-a",
    updated_at: str = "2026-11-01T10:00:00+00:00",
    seed: int = 0,
) -> Path:
    """A run folder as the trainer leaves it, with a fake manifest and random-byte files."""
    d = root / key
    rng = __import__("random").Random(seed)
    files = {
        "config.json": json.dumps({"id": 620, "slug": "text2mol_fatgcn"}).encode(),
        "metrics.jsonl": b"".join(json.dumps({"epoch": i, "loss": rng.random()}).encode() + b"\n" for i in range(5)),
        "checkpoints/last.pt": rng.randbytes(300_000),
        "checkpoints/best.pt": rng.randbytes(200_000),
        "predictions/valid.parquet": rng.randbytes(5_000),
        "predictions/test.parquet": rng.randbytes(5_000),
        "submission.csv": b"id,y\n1,0.5\n",
        "logs/train.log": b"epoch 0\n",
        "logs/empty.txt": b"",
    }
    for rel, data in files.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)
    manifest = {
        "experiment": 620,
        "name": key.split("/")[0],
        "fold": 0,
        "config_hash": "abc123",
        "run_key": key,
        "run_uid": run_uid or uuid.uuid4().hex,
        "status": "running",
        "updated_at": updated_at,
        "started_at": "2026-11-01T09:00:00+00:00",
        "machine": {"hostname": host, "backend": "local"},
    }
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


# bookkeeping: what a run folder last synced, its lock file, the stored file index
BOOKKEEPING = (".synced.json", ".lock", ".index.json")


def tree_bytes(d: Path) -> dict[str, bytes]:
    """Every regular file under d (hidden ones included: a pull must leave no stray files), but the run
    folder's own bookkeeping."""
    return {
        p.relative_to(d).as_posix(): p.read_bytes()
        for p in sorted(d.rglob("*"))
        if p.is_file() and p.relative_to(d).as_posix() not in BOOKKEEPING
    }


def set_manifest(run_dir: Path, **fields) -> None:
    m = json.loads((run_dir / "manifest.json").read_text())
    m.update(fields)
    (run_dir / "manifest.json").write_text(json.dumps(m))


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    with HubServer(tmp_path / "hub-root", token=TOKEN) as server:
        yield server


@pytest.fixture
def hub_store(hub):
    from molremote.store import open_store

    return open_store("hf://tester/proj-runs", endpoint=hub.url)
