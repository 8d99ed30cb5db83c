"""`molremote embed`: counts, --out, shards, errors with their exit codes, and no torch where none is needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from molremote.cli import app

from .conftest import random_proteins

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real command in a subprocess; reports on stderr whether torch got imported."""
    code = (
        "import sys, runpy\n"
        "sys.argv = ['molremote', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('molremote', run_name='__main__')\n"
        "finally:\n    print('TORCH' if 'torch' in sys.modules else 'NOTORCH', file=sys.stderr)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MOLREMOTE_PROJECT": str(tmp_path), **(env or {})},
        timeout=300,
    )


@pytest.fixture
def fasta(tmp_path) -> Path:
    seqs = random_proteins(12, 10, 70, seed=11)
    p = tmp_path / "prot.fasta"
    p.write_text("".join(f">sp|P{i:05d}|X_HUMAN protein {i}\n{s[:30]}\n{s[30:]}\n" for i, s in enumerate(seqs)))
    return p


def test_help_does_not_import_torch(tmp_path):
    r = cli(tmp_path, "embed", "--help")
    assert r.returncode == 0 and "--shard" in r.stdout and "NOTORCH" in r.stderr


def test_kmer_embed_counts_cache_and_out_without_torch(tmp_path, fasta):
    r = cli(tmp_path, "embed", "--model", "kmer:2", "--fasta", str(fasta), "--out", "x.npy")
    assert r.returncode == 0, r.stderr
    assert "12 proteins (12 unique): 0 cached, 12 computed" in r.stdout and "NOTORCH" in r.stderr
    assert str(tmp_path / ".molremote" / "embeddings") in r.stdout.replace("\n", "")  # the project's cache
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (12, 400) and x.dtype == np.float16
    r = cli(tmp_path, "embed", "--model", "kmer:2", "--fasta", str(fasta), "--json")
    d = json.loads(r.stdout)
    assert (d["cached"], d["computed"], d["dim"]) == (12, 0, 400)


def test_shards_then_full_read(tmp_path, fasta):
    done = 0
    for i in range(2):
        r = cli(tmp_path, "embed", "--model", "kmer:1", "--fasta", str(fasta), "--shard", f"{i}/2", "--json")
        assert r.returncode == 0, r.stderr
        d = json.loads(r.stdout)
        assert d["cached"] == done and d["computed"] + d["other_shards"] == 12 - done
        done += d["computed"]
    assert done == 12
    r = cli(tmp_path, "embed", "--model", "kmer:1", "--fasta", str(fasta), "--out", "all.npy")
    assert "12 cached, 0 computed" in r.stdout and np.load(tmp_path / "all.npy").shape == (12, 20)


def test_tiny_esm_through_the_cli(tmp_path, fasta, tiny_esm, one_thread):
    args = ["embed", "--model", str(tiny_esm), "--fasta", str(fasta), "--cache-dir", str(tmp_path / "c")]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "e.npy"), "--policy", "window", "--max-len", "40"])
    assert res.exit_code == 0, res.output
    assert "12 computed" in res.output and "tokens/s" in res.output and "window 40/20" in res.output
    assert np.load(tmp_path / "e.npy").shape == (12, 64)
    res = runner.invoke(app, [*args, "--policy", "window", "--max-len", "40", "--stride", "20"])
    assert "12 cached, 0 computed" in res.output


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--model", "kmer:1", "--fasta", "missing.fasta"], 3, "missing.fasta: not found"),
        (["--model", "kmer:1", "--fasta", "{bad}"], 3, "not FASTA"),
        (["--model", "kmer:1", "--fasta", "{empty}"], 3, "empty sequence"),
        (["--model", "facebook/esm2_t6_8M_UR50D", "--fasta", "{fasta}"], 3, "HF_HUB_OFFLINE"),
        (["--model", "no_such_model", "--fasta", "{fasta}"], 3, "not a Hugging Face Hub id"),
        (["--model", "kmer:1", "--fasta", "{fasta}", "--shard", "3/3"], 2, "0 <= i < n"),
        (["--model", "kmer:1", "--fasta", "{fasta}", "--policy", "middle"], 2, "headtail, window"),
        (["--model", "kmer:1", "--fasta", "{fasta}", "--out", "x.csv"], 2, ".npy"),
    ],
)
def test_errors_name_the_culprit_and_exit_with_their_code(tmp_path, fasta, args, code, words):
    (tmp_path / "bad.fasta").write_text("MKVLAA\n>x\nMKV\n")
    (tmp_path / "empty.fasta").write_text(">a\nMKV\n>b\n>c\nMKV\n")
    args = [a.format(bad=tmp_path / "bad.fasta", empty=tmp_path / "empty.fasta", fasta=fasta) for a in args]
    r = cli(tmp_path, "embed", *args, env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")})
    assert r.returncode == code, r.stdout + r.stderr
    assert words in " ".join(r.stderr.split()) and "Traceback" not in r.stderr and "NOTORCH" in r.stderr
    assert not (tmp_path / "x.csv").exists()
