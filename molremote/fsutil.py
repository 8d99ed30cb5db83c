"""Durable, atomic file output: readers see the old file or the new one, never half of one.

Every durable write in molremote goes through this module: a temp file beside the target, written, flushed and
fsynced, given the mode an ordinary `open()` would give (0666 & ~umask, e.g. 0644 under umask 022: `mkstemp`
alone makes 0600, unreadable to the other users of a shared-filesystem store), then renamed over the target,
and the folder fsynced so the rename itself survives a crash. On any error the temp file is removed and the
target is untouched.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO, TextIO


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back (process-wide, a few ns).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode() -> int:
    """The mode `open(path, "w")` would give a new file: 0o666 less the process umask."""
    return 0o666 & ~_umask()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - some filesystems refuse to open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - e.g. some network filesystems
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: Path | str, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file handle on a temp file next to `path`; on success it is fsynced, given `mode` (default:
    the umask's) and renamed over `path`; on any error it is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


@contextmanager
def atomic_text_output(path: Path | str, encoding: str = "utf-8", newline: str | None = None) -> Iterator[TextIO]:
    """`atomic_output` as a text handle (for csv writers and line-by-line output)."""
    import io

    with atomic_output(path) as raw:
        f = io.TextIOWrapper(raw, encoding=encoding, newline=newline)
        try:
            yield f
            f.flush()
        finally:
            f.detach()


def write_bytes(path: Path | str, data: bytes) -> Path:
    with atomic_output(path) as f:
        f.write(data)
    return Path(path)


def write_text(path: Path | str, text: str, encoding: str = "utf-8") -> Path:
    return write_bytes(path, text.encode(encoding))


def write_json(path: Path | str, obj: Any, indent: int | None = 2, sort_keys: bool = False) -> Path:
    return write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys, default=str) + "\n")


def write_stream(path: Path | str, chunks: Iterator[bytes] | IO[bytes], chunk_size: int = 1 << 20) -> Path:
    """Copy a byte iterator or a readable binary file to `path`, atomically."""
    with atomic_output(path) as f:
        if hasattr(chunks, "read"):
            while block := chunks.read(chunk_size):
                f.write(block)
        else:
            for block in chunks:
                f.write(block)
    return Path(path)


@contextmanager
def atomic_path(path: Path | str, suffix: str = "") -> Iterator[Path]:
    """A temp path beside `path` for writers that insist on a file name (pyarrow, matplotlib, numpy.save,
    torch.save): the caller writes it; on success it is fsynced, given the umask's mode and renamed over
    `path`; on error it is removed. `suffix` keeps an extension some writers need (e.g. ".png", ".npy")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
