"""Shared fixtures: short random proteins and a tiny ESM-2 trained on 20 of them (seconds, once per session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

AA = "ACDEFGHIKLMNPQRSTVWY"


def random_proteins(n: int, lo: int, hi: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(AA), size=int(rng.integers(lo, hi)))) for _ in range(n)]


@pytest.fixture(scope="session")
def proteins() -> list[str]:
    return random_proteins(20, 20, 90)


@pytest.fixture(scope="session")
def tiny_esm(tmp_path_factory, proteins) -> Path:
    import torch

    from molremote.embeddings import build_demo_protein_model

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return build_demo_protein_model(proteins, tmp_path_factory.mktemp("esm") / "tiny", steps=40, crop=64)
    finally:
        torch.set_num_threads(n)


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "embcache"
