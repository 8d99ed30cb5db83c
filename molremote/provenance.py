"""What a session ran on, enough to rerun it: package versions, the whole installed set, the accelerators.

    environment(run_dir) -> {"packages": {...}, "env_hash": "…", "env_file": "env/<hash>.txt"}
    accelerators()       -> {"type": "cuda", "model": "NVIDIA H200", "count": 1} | {"type": "cpu", "count": 0}

The full `name==version` list is written once per distinct environment into the run folder
(`env/<hash>.txt`, pushed with the run); the manifest's sessions name it by hash. importlib.metadata reads
the installed set from disk without importing anything (tens of milliseconds). torch-free: accelerators
are only asked of torch when the caller already imported it (the trainer has).
"""

from __future__ import annotations

import hashlib
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# The packages that shape results: numerics, models, data. Recorded by name in every session; the rest of
# the installed set is in the env file.
RESULT_PACKAGES = (
    "torch",
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "pyarrow",
    "transformers",
    "tokenizers",
    "torch-geometric",
    "peft",
    "accelerate",
    "safetensors",
    "huggingface-hub",
    "rdkit",
    "pydantic",
    "molremote",
)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_DIST_INFO = re.compile(r"(?P<name>[^-]+)-(?P<version>[^-]+?)(-py[\d.]+)?\.(dist-info|egg-info)")


def _name_version(d: metadata.Distribution) -> tuple[str, str] | None:
    # `<name>-<version>.dist-info` says both (the wheel spec escapes '-' in each): no METADATA file parsed,
    # which is what makes this fast (an email-header parse per package costs ~1 s for a ML venv)
    folder = getattr(d, "_path", None)
    m = _DIST_INFO.fullmatch(Path(folder).name) if folder is not None else None
    if m:
        return _norm(m["name"]), m["version"]
    # PackageMetadata is an email.message.Message at run time (.get: None when missing); typeshed's protocol
    # lists .get only from Python 3.12
    name = d.metadata.get("Name") if d.metadata else None  # type: ignore[attr-defined]
    return (_norm(name), d.version) if name else None


def installed() -> list[str]:
    """`name==version` for every installed distribution, normalised names, sorted, one per name (the first
    on sys.path wins, as for imports)."""
    seen: dict[str, str] = {}
    for d in metadata.distributions():
        nv = _name_version(d)
        if nv:
            seen.setdefault(*nv)
    return [f"{n}=={v}" for n, v in sorted(seen.items())]


def environment(run_dir: Path | None = None) -> dict[str, Any]:
    lines = installed()
    versions = dict(line.split("==", 1) for line in lines)
    text = "\n".join(lines) + "\n"
    env_hash = hashlib.sha256(text.encode()).hexdigest()[:16]
    out: dict[str, Any] = {
        "python": sys.version.split()[0],
        "packages": {p: versions[p] for p in RESULT_PACKAGES if p in versions},
        "env_hash": env_hash,
        "env_file": f"env/{env_hash}.txt",
    }
    if run_dir is not None:
        path = Path(run_dir) / out["env_file"]
        if not path.is_file():
            from .fsutil import write_text

            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, text)
    return out


def accelerators() -> dict[str, Any]:
    torch = sys.modules.get("torch")
    if torch is None:
        return {"type": "unknown", "count": None}  # not asked: importing torch here would cost seconds
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return {
            "type": "cuda",
            "model": names[0] if len(set(names)) == 1 else names,
            "count": len(names),
            "cuda": torch.version.cuda,
        }
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return {"type": "mps", "model": "Apple GPU", "count": 1}
    return {"type": "cpu", "count": 0}
