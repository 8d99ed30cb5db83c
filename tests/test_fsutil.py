"""molremote/fsutil.py: atomic, durable writes with the umask's mode (issue 10 item 5)."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest

from molremote import fsutil


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _write_all(d: Path) -> dict[str, Path]:
    """One file through each writer of fsutil."""
    out = {
        "write_text": fsutil.write_text(d / "a.txt", "hello\n"),
        "write_json": fsutil.write_json(d / "b.json", {"x": 1}),
        "write_bytes": fsutil.write_bytes(d / "c.bin", b"\x00\x01"),
        "write_stream (file)": fsutil.write_stream(d / "d.bin", io.BytesIO(b"x" * 3_000_000), chunk_size=1 << 20),
        "write_stream (iterator)": fsutil.write_stream(d / "e.bin", iter([b"a", b"b"])),
    }
    with fsutil.atomic_output(d / "f.bin") as f:
        f.write(b"raw")
    out["atomic_output"] = d / "f.bin"
    with fsutil.atomic_text_output(d / "g.csv", newline="") as f:
        csv.writer(f).writerows([["id", "p"], [1, 0.5]])
    out["atomic_text_output"] = d / "g.csv"
    with fsutil.atomic_path(d / "h.npy", suffix=".npy") as tmp:
        assert tmp.name.endswith(".npy") and tmp.parent == d
        tmp.write_bytes(b"npy")
    out["atomic_path"] = d / "h.npy"
    return out


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_every_writer_gives_the_umask_mode(tmp_path, mask, mode):
    """0644 under umask 022: readable by the other users of a shared-filesystem store (mkstemp alone: 0600)."""
    with umask(mask):
        files = _write_all(tmp_path)
    for writer, p in files.items():
        assert stat.S_IMODE(p.stat().st_mode) == mode, f"{writer}: {oct(stat.S_IMODE(p.stat().st_mode))}"
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted(p.name for p in files.values())  # no temp left


def test_contents(tmp_path):
    files = _write_all(tmp_path)
    assert files["write_text"].read_text() == "hello\n"
    assert json.loads(files["write_json"].read_text()) == {"x": 1}
    assert files["write_stream (file)"].stat().st_size == 3_000_000
    assert files["atomic_text_output"].read_text() == "id,p\n1,0.5\n"
    assert files["atomic_path"].read_bytes() == b"npy"


def test_error_leaves_the_target_untouched_and_no_temp(tmp_path):
    target = tmp_path / "keep.txt"
    fsutil.write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with fsutil.atomic_output(target) as f:
            f.write(b"half of the new")
            raise RuntimeError("writer died")
    with pytest.raises(RuntimeError):
        with fsutil.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer died")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_replacing_keeps_readers_on_a_whole_file(tmp_path):
    """A reader holding the old file keeps reading it whole while the new one replaces it (rename)."""
    target = tmp_path / "m.json"
    fsutil.write_json(target, {"v": 1})
    with open(target) as reader:
        fsutil.write_json(target, {"v": 2})
        assert json.load(reader) == {"v": 1}
    assert json.loads(target.read_text()) == {"v": 2}
