"""What an embedding is: the model and how a protein is cut and pooled, with a stable key for the cache.

`EmbeddingSpec.key()` is a hash of everything that changes the numbers: the model's identity (a Hub id and
revision; a local folder's config and weight files by content, so a copy elsewhere or a rebuilt
deterministic demo model keeps the key; `kmer:<k>` by k), the policy, its lengths and the pooling. torch-free.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import UsageError

POLICIES = ("headtail", "window")
POOLINGS = ("mean",)
KMER_PREFIX = "kmer:"
# Files of a Hugging Face model folder that decide its outputs (weights, architecture, vocabulary).
_IDENTITY_FILES = (
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "vocab.txt",
    "special_tokens_map.json",
    "tokenizer_config.json",
)


@dataclass(frozen=True)
class EmbeddingSpec:
    """A Hub id ("facebook/esm2_t30_150M_UR50D"), a local HF-format folder, or "kmer:<k>" (torch-free k-mer
    frequencies); `policy` for proteins longer than `max_len` residues: "headtail" keeps the first
    max_len//2 and the last max_len - max_len//2 residues, "window" averages the embeddings of windows of
    `max_len` residues every `stride` residues (the last one ending at the protein's end)."""

    model: str
    policy: str = "headtail"
    max_len: int = 1022
    stride: int = 511
    pooling: str = "mean"
    revision: str = "main"  # Hub models only: pin a commit for a strictly reproducible key

    def __post_init__(self) -> None:
        if not self.model:
            raise UsageError("embedding model: empty (give a Hub id, a local model folder or kmer:<k>)")
        if self.policy not in POLICIES:
            raise UsageError(f"embedding policy {self.policy!r}: use one of {', '.join(POLICIES)}")
        if self.pooling not in POOLINGS:
            raise UsageError(f"embedding pooling {self.pooling!r}: use one of {', '.join(POOLINGS)}")
        if self.max_len < 2:
            raise UsageError(f"embedding max_len {self.max_len}: must be at least 2 residues")
        if self.stride < 1 or (self.policy == "window" and self.stride > self.max_len):
            raise UsageError(f"embedding stride {self.stride}: must be in 1..max_len ({self.max_len})")
        if self.is_kmer:
            self.kmer_k  # noqa: B018  (validates k)

    @property
    def is_kmer(self) -> bool:
        return self.model.startswith(KMER_PREFIX)

    @property
    def kmer_k(self) -> int:
        raw = self.model[len(KMER_PREFIX) :]
        if not raw.isdigit() or not 1 <= int(raw) <= 3:
            raise UsageError(f"embedding model {self.model!r}: k-mer size must be 1, 2 or 3 (e.g. kmer:2)")
        return int(raw)

    @property
    def local_dir(self) -> Path | None:
        """The model folder when `model` names one on this machine, else None (a Hub id, or k-mers)."""
        if self.is_kmer:
            return None
        p = Path(self.model).expanduser()
        return p if p.is_dir() else None

    def identity(self) -> dict[str, object]:
        """What the key hashes: the model's identity and the parameters that change the numbers."""
        if self.is_kmer:
            return {"model": f"{KMER_PREFIX}{self.kmer_k}", "pooling": "frequency"}
        local = self.local_dir
        model: dict[str, object] = (
            {"local_files": _folder_identity(local.resolve())}
            if local is not None
            else {"hub": self.model, "revision": self.revision}
        )
        d = asdict(self)
        d.pop("model"), d.pop("revision")
        if self.policy == "headtail":
            d.pop("stride")  # unused: two head+tail specs differing in stride are the same numbers
        return {"model": model, **d}

    def key(self) -> str:
        """A 16-hex hash of `identity()`: the cache folder's name."""
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def label(self) -> str:
        """A short human name (model, policy) for messages and the cache folder's meta file."""
        if self.is_kmer:
            return self.model
        name = self.model.rstrip("/").rsplit("/", 1)[-1]
        return f"{name} {self.policy} {self.max_len}" + (f"/{self.stride}" if self.policy == "window" else "")


def _folder_identity(folder: Path) -> dict[str, str]:
    files = {n: folder / n for n in _IDENTITY_FILES if (folder / n).is_file()}
    if not any(n in files for n in ("model.safetensors", "pytorch_model.bin")):
        # sharded checkpoints: every weight file
        files.update({p.name: p for p in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))})
    if not files:
        raise UsageError(f"embedding model folder {folder}: holds no config.json or weight files")
    out = {}
    for name, p in sorted(files.items()):
        st = p.stat()
        out[name] = _file_sha256(str(p.resolve()), st.st_size, st.st_mtime_ns)
    return out


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, cached per (path, size, mtime) in this process (a 650M model: ~3 s once).
    A Hub cache snapshot links each file to `blobs/<sha256>`: that name is the hash, no read needed."""
    real = os.path.realpath(path)
    base = os.path.basename(real)
    if os.path.basename(os.path.dirname(real)) == "blobs" and len(base) == 64:
        return base
    h = hashlib.sha256()
    with open(real, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps downloaded repos (same rule as huggingface_hub.constants, without importing it)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(hf_home).expanduser() / "hub"


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_model_available(spec: EmbeddingSpec) -> None:
    """Fail before importing torch when the model surely cannot load: neither a folder nor a Hub id, or a Hub
    id absent from the Hub cache while HF_HUB_OFFLINE is set. (Online, transformers downloads it.)"""
    from ..errors import DataError

    if spec.is_kmer or spec.local_dir is not None:
        return
    name = spec.model
    if name.count("/") != 1 or name.startswith((".", "/", "~")):
        raise DataError(
            f"embedding model {name!r}: no such folder on this machine, and not a Hugging Face Hub id "
            f"(owner/name, e.g. facebook/esm2_t30_150M_UR50D); or use kmer:<k>"
        )
    repo = hub_cache_dir() / ("models--" + name.replace("/", "--"))
    if hub_offline() and not (repo / "snapshots").is_dir():
        raise DataError(
            f"embedding model {name!r}: not in the Hugging Face cache ({repo}) and HF_HUB_OFFLINE is set. "
            f"Download it where there is network (`hf download {name}`) and copy the cache here, "
            f"or pass a local model folder"
        )
