"""Read an offline W&B run file (`run-<id>.wandb`) back, for tests.

Hand-written because wandb 0.31 ships its reader only inside the Go `wandb-core` binary; the format is
small and stable: a 7-byte header (b":W&B", magic 0xBEE1 little-endian u16, version u8), then LevelDB-log
records in 32 KiB blocks counted from the start of the file. Each record header is crc32 u32 (zlib crc32
over the type byte then the payload), length u16, type u8 (FULL=1, FIRST=2, MIDDLE=3, LAST=4); a block
tail too short for a record header is zero padding. Each reassembled payload is a
`wandb.proto.wandb_internal_pb2.Record`.
"""

from __future__ import annotations

import glob
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HEADER = b":W&B"
MAGIC = 0xBEE1
BLOCK = 32 * 1024
REC_HEADER = 7  # crc u32, length u16, type u8
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class WandbFileError(ValueError):
    pass


def iter_payloads(path: Path) -> Iterator[bytes]:
    data = Path(path).read_bytes()
    if len(data) < 7 or data[:4] != HEADER:
        raise WandbFileError(f"{path}: not a .wandb file (header {data[:4]!r})")
    magic, version = struct.unpack("<HB", data[4:7])
    if magic != MAGIC:
        raise WandbFileError(f"{path}: bad magic {magic:#x}")
    pos, parts = 7, []
    while pos < len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < REC_HEADER:  # zero padding to the next block
            pos += left_in_block
            continue
        if pos + REC_HEADER > len(data):
            break  # a truncated tail (run still being written)
        crc, length, rtype = struct.unpack("<IHB", data[pos : pos + REC_HEADER])
        if crc == 0 and length == 0 and rtype == 0:  # preallocated/zero tail
            pos += left_in_block
            continue
        payload = data[pos + REC_HEADER : pos + REC_HEADER + length]
        if len(payload) < length:
            break
        if zlib.crc32(payload, zlib.crc32(bytes([rtype]))) != crc:
            raise WandbFileError(f"{path}: crc mismatch at byte {pos}")
        pos += REC_HEADER + length
        if rtype == FULL:
            yield payload
        elif rtype == FIRST:
            parts = [payload]
        elif rtype == MIDDLE:
            parts.append(payload)
        elif rtype == LAST:
            parts.append(payload)
            yield b"".join(parts)
            parts = []
        else:
            raise WandbFileError(f"{path}: unknown record type {rtype} at byte {pos}")


def records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    out = []
    for payload in iter_payloads(path):
        r = pb.Record()
        r.ParseFromString(payload)
        out.append(r)
    return out


def wandb_file(run_folder: Path) -> Path:
    """The `.wandb` file inside an offline run folder."""
    files = glob.glob(str(Path(run_folder) / "run-*.wandb"))
    if len(files) != 1:
        raise WandbFileError(f"{run_folder}: expected one run-*.wandb, found {files}")
    return Path(files[0])


def _config_items(cfg: Any) -> dict[str, Any]:
    return {item.key: json.loads(item.value_json) for item in cfg.update}


def run_info(path: Path) -> dict[str, Any]:
    """The run record: id, project, entity, group, job_type, tags, config (plus later config updates)."""
    info: dict[str, Any] = {"config": {}}
    for r in records(path):
        kind = r.WhichOneof("record_type")
        if kind == "run" and "id" not in info:
            run = r.run
            info.update(
                id=run.run_id,
                project=run.project,
                entity=run.entity,
                group=run.run_group,
                job_type=run.job_type,
                tags=list(run.tags),
                display_name=run.display_name,
            )
            info["config"].update(_config_items(run.config))
        elif kind == "config":
            info["config"].update(_config_items(r.config))
    return info


def history(path: Path) -> list[dict[str, Any]]:
    """History rows as {key: value}, keys joined by '/' when nested (includes _step)."""
    rows = []
    for r in records(path):
        if r.WhichOneof("record_type") == "history":
            row = {}
            for item in r.history.item:
                key = "/".join(item.nested_key) if item.nested_key else item.key
                row[key] = json.loads(item.value_json)
            rows.append(row)
    return rows


def summary(path: Path) -> dict[str, Any]:
    """The last value of each summary key (updates applied in order, removals honoured)."""
    out: dict[str, Any] = {}
    for r in records(path):
        if r.WhichOneof("record_type") == "summary":
            for item in r.summary.update:
                key = "/".join(item.nested_key) if item.nested_key else item.key
                out[key] = json.loads(item.value_json)
            for item in r.summary.remove:
                out.pop("/".join(item.nested_key) if item.nested_key else item.key, None)
    return out


def exit_code(path: Path) -> int | None:
    for r in records(path):
        if r.WhichOneof("record_type") == "exit":
            return r.exit.exit_code
    return None


def record_kinds(path: Path) -> list[str]:
    """The kind of each record, in order ('run', 'history', 'summary', 'preempting', 'exit', ...)."""
    return [r.WhichOneof("record_type") for r in records(path)]
