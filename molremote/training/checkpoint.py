"""Atomic, self-describing checkpoints with a fallback copy.

`last.pt` is replaced atomically (temp file + fsync + rename); the previous `last.pt` is kept as
`last.prev.pt`, so a corrupt or truncated `last.pt` (disk full, a copy cut short) falls back one
checkpoint instead of losing the run. The corrupt file is then moved aside (`last.pt.corrupt-<time>`), so
the next save can never rotate it into the backup slot. Loading never silently starts from scratch over
existing checkpoints.
"""

from __future__ import annotations

import io
import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from ..runs import write_atomic

log = logging.getLogger(__name__)


def rng_state() -> dict[str, Any]:
    s = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s: dict[str, Any]) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def save(path: Path, state: dict[str, Any], keep_previous: bool = True) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    path = Path(path)
    if keep_previous and path.exists():
        os.replace(path, path.with_name(path.stem + ".prev" + path.suffix))
    write_atomic(path, buf.getvalue())


def _load(path: Path) -> dict[str, Any]:
    # weights_only=False: our own checkpoints hold RNG states and optimizer state (python objects);
    # they are files this run wrote, never downloaded third-party pickles.
    return torch.load(path, map_location="cpu", weights_only=False)


def move_aside(path: Path) -> Path:
    """Keep a corrupt checkpoint for inspection, out of the rotation (never pushed: see store.base.excluded)."""
    import datetime as dt

    aside = path.with_name(f"{path.name}.corrupt-{dt.datetime.now().strftime('%Y%m%dT%H%M%S')}")
    os.replace(path, aside)
    return aside


def load_latest(ckpt_dir: Path, move_corrupt: bool = True) -> dict[str, Any] | None:
    """The newest readable of last.pt / last.prev.pt; None when neither exists; CheckpointError when files
    exist but none can be read (never train from scratch over them). When it falls back, the unreadable
    newer file is moved aside (`move_corrupt`: rank 0 only under DDP)."""
    candidates = [ckpt_dir / "last.pt", ckpt_dir / "last.prev.pt"]
    existing = [p for p in candidates if p.exists()]
    if not existing:
        return None
    errors: list[str] = []
    for p in existing:
        try:
            state = _load(p)
            if not isinstance(state, dict) or "model" not in state:
                raise ValueError("not a molremote checkpoint")
            if p.name != "last.pt" and not errors:  # killed between `save`'s rotation and its write
                log.warning("checkpoint %s missing (stopped while saving); resuming from %s", candidates[0], p.name)
            elif p.name != "last.pt":  # last.pt exists but cannot be read
                aside = ""
                if move_corrupt and candidates[0].exists():
                    aside = f"; moved it aside to {move_aside(candidates[0]).name}"
                log.warning(
                    "checkpoint %s unreadable (%s); resuming from %s%s", candidates[0], errors[-1], p.name, aside
                )
            return state
        except Exception as e:  # corrupt zip, truncated file, wrong format
            errors.append(f"{p}: {type(e).__name__}: {e}")
    raise CheckpointError(
        "no usable checkpoint; "
        + "; ".join(errors)
        + ". Refusing to train from scratch over them: move the run folder aside or use --restart."
    )


def load_weights(path: Path) -> dict[str, Any]:
    try:
        return _load(path)
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None
