"""Provenance: package versions, the whole installed set by hash with its list beside the manifest, accelerators."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib import metadata

from molremote.provenance import accelerators, installed
from molremote.runs import Run


def test_installed_set_matches_importlib_metadata_and_is_hashed_beside_the_manifest(tmp_path):
    lines = installed()
    names = {line.split("==")[0] for line in lines}
    assert {"numpy", "pydantic", "typer", "molremote"} <= names and len(lines) == len(names)
    assert f"numpy=={metadata.version('numpy')}" in lines  # the folder-name shortcut agrees with METADATA
    run = Run(tmp_path / "run")
    run.path.mkdir()
    run.save({"status": "created", "sessions": []})
    run.start_session()
    run.start_session()
    m = json.loads(run.manifest_path.read_text())
    env = m["sessions"][-1]["env"]
    assert env["packages"]["numpy"] == metadata.version("numpy") and env["python"] == sys.version.split()[0]
    text = (run.path / env["env_file"]).read_text()
    assert text.splitlines() == lines and hashlib.sha256(text.encode()).hexdigest()[:16] == env["env_hash"]
    assert [p.name for p in (run.path / "env").iterdir()] == [f"{env['env_hash']}.txt"]  # one file per environment
    assert m["sessions"][0]["env"] == env
    assert "accelerators" in m["sessions"][-1]


def test_accelerators_need_torch_already_imported():
    code = (
        "import sys; from molremote.provenance import accelerators; a = accelerators(); "
        "assert 'torch' not in sys.modules, 'imported torch'; print(a['type'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "unknown", out.stderr
    import torch

    a = accelerators()
    if torch.cuda.is_available():
        assert a["type"] == "cuda" and a["count"] == torch.cuda.device_count() and a["model"]
    else:
        assert a == {"type": "cpu", "count": 0}
