"""Content-addressed cache of slow, deterministic fits (UMAP, t-SNE): a fitted object is stored under a hash of
(kind, the input matrices' dtype/shape/bytes, the fit's parameters), so the same fit on the same data is done
once and reused by every run, fold, seed and resumed session that asks for it.

Where: `MOLREMOTE_FIT_CACHE`, else `<project>/.molremote/fits/<kind>/<key>.pkl` (`.molremote/` is never
bundled). Writes are atomic (fsutil), so concurrent runs that miss together both fit and the last rename wins
with an identical object. The cache holds only pickles molremote wrote itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .fsutil import atomic_path

T = TypeVar("T")

# per-process counts (tests and logs read them): a hit loaded a stored fit, a miss fitted and stored one
STATS = {"hits": 0, "misses": 0}


def cache_dir() -> Path:
    env = os.environ.get("MOLREMOTE_FIT_CACHE")
    if env:
        return Path(env).expanduser()
    from .project import project_root

    return project_root() / ".molremote" / "fits"


def key(kind: str, arrays: Sequence[np.ndarray], params: dict[str, Any]) -> str:
    """SHA-256 over the kind, the parameters (sorted JSON) and each array's dtype, shape and bytes."""
    h = hashlib.sha256(kind.encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"|{a.dtype.str}{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def cached_fit(kind: str, arrays: Sequence[np.ndarray], params: dict[str, Any], fit: Callable[[], T]) -> T:
    """`fit()`'s result, loaded from the cache when the same (kind, arrays, params) was fitted before."""
    path = cache_dir() / kind / f"{key(kind, arrays, params)}.pkl"
    if path.exists():
        try:
            with open(path, "rb") as fh:
                obj = pickle.load(fh)  # our own file, written below
            STATS["hits"] += 1
            return obj
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            pass  # unreadable (another library version, a damaged file): fit again and replace it
    obj = fit()
    STATS["misses"] += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return obj
