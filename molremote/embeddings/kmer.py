"""k-mer frequency features of proteins: a torch-free protein tower (`kmer:<k>`, 20^k columns).

Each protein's vector is the relative frequency of every k-mer over the 20 standard amino acids (k-mers
holding any other letter are skipped), in a fixed alphabetical order."""

from __future__ import annotations

import numpy as np

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
_CODE = np.full(256, -1, dtype=np.int64)
for _i, _a in enumerate(AMINO_ACIDS):
    _CODE[ord(_a)] = _i


def kmer_dim(k: int) -> int:
    return len(AMINO_ACIDS) ** k


def kmer_frequencies(sequence: str, k: int) -> np.ndarray:
    """float32 [20^k]: counts of each k-mer divided by the number of counted k-mers (zeros if none)."""
    codes = _CODE[np.frombuffer(sequence.upper().encode("ascii", "replace"), dtype=np.uint8)]
    out = np.zeros(kmer_dim(k), dtype=np.float32)
    n = len(codes) - k + 1
    if n <= 0:
        return out
    idx = np.zeros(n, dtype=np.int64)
    ok = np.ones(n, dtype=bool)
    for j in range(k):
        c = codes[j : j + n]
        ok &= c >= 0
        idx = idx * len(AMINO_ACIDS) + np.maximum(c, 0)
    counts = np.bincount(idx[ok], minlength=out.size)
    total = counts.sum()
    if total:
        out[:] = counts / total
    return out
