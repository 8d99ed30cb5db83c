"""How proteins become model inputs: the pieces of each protein under a policy, and length-sorted batches
under a token budget. Pure functions over lengths and strings, torch-free, so they are tested alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .spec import EmbeddingSpec

SPECIAL_TOKENS = 2  # ESM adds <cls> before and <eos> after the residues


@dataclass(frozen=True)
class Piece:
    """One model input: residues `text` of protein number `seq` (position in the list being computed);
    a protein under the window policy has several pieces, whose embeddings are averaged."""

    seq: int
    text: str


def pieces(spec: EmbeddingSpec, sequence: str) -> list[str]:
    """The residue strings the model sees for one protein."""
    n, m = len(sequence), spec.max_len
    if n <= m:
        return [sequence]
    if spec.policy == "headtail":
        head = m // 2
        return [sequence[:head] + sequence[n - (m - head) :]]
    starts = list(range(0, n - m + 1, spec.stride))
    if starts[-1] != n - m:
        starts.append(n - m)  # the last window ends at the protein's end
    return [sequence[s : s + m] for s in starts]


def batches(items: Sequence[Piece], batch_tokens: int, *, sort: bool = True) -> list[list[int]]:
    """Indices of `items` grouped into batches whose padded size (count x longest input, with <cls>/<eos>)
    stays within `batch_tokens` (a longer input alone is a batch of one). `sort`: longest first, so each
    batch holds inputs of nearly one length (least padding) and a too-large batch fails at the start;
    otherwise the given order (what the benchmark compares against)."""
    order = sorted(range(len(items)), key=lambda i: -len(items[i].text)) if sort else list(range(len(items)))
    out: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    for i in order:
        n = len(items[i].text) + SPECIAL_TOKENS
        if cur and max(longest, n) * (len(cur) + 1) > batch_tokens:
            out.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, n)
    if cur:
        out.append(cur)
    return out


def padded_tokens(items: Sequence[Piece], batch: Sequence[int]) -> int:
    return (max(len(items[i].text) for i in batch) + SPECIAL_TOKENS) * len(batch)


def real_tokens(items: Sequence[Piece], batch: Sequence[int]) -> int:
    return sum(len(items[i].text) + SPECIAL_TOKENS for i in batch)
