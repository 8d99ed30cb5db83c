"""The content-hash fit cache: the same (kind, data, params) is fitted once and loaded afterwards; other data or
other parameters are other entries; a damaged entry is refitted; UMAP in the MoA preprocessing goes through it."""

from __future__ import annotations

import numpy as np
import pytest

from molremote import fitcache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MOLREMOTE_FIT_CACHE", str(tmp_path / "fits"))
    monkeypatch.setitem(fitcache.STATS, "hits", 0)
    monkeypatch.setitem(fitcache.STATS, "misses", 0)
    return tmp_path / "fits"


def test_a_second_fit_of_the_same_data_and_params_is_a_cache_hit(cache):
    calls = []
    x = np.arange(12, dtype=np.float32).reshape(4, 3)

    def fit():
        calls.append(1)
        return {"mean": x.mean(axis=0)}

    a = fitcache.cached_fit("demo", [x], {"k": 2}, fit)
    b = fitcache.cached_fit("demo", [x.copy()], {"k": 2}, fit)  # equal content, another array
    assert len(calls) == 1 and fitcache.STATS == {"hits": 1, "misses": 1}
    np.testing.assert_array_equal(a["mean"], b["mean"])
    fitcache.cached_fit("demo", [x], {"k": 3}, fit)  # other params
    fitcache.cached_fit("demo", [x + 1], {"k": 2}, fit)  # other data
    fitcache.cached_fit("demo", [x.astype(np.float64)], {"k": 2}, fit)  # same values, other dtype
    assert len(calls) == 4
    assert len(list((cache / "demo").glob("*.pkl"))) == 4


def test_a_damaged_entry_is_refitted_and_replaced(cache):
    x = np.ones((2, 2))
    fitcache.cached_fit("demo", [x], {}, lambda: 1)
    (entry,) = (cache / "demo").glob("*.pkl")
    entry.write_bytes(b"not a pickle")
    assert fitcache.cached_fit("demo", [x], {}, lambda: 2) == 2
    assert fitcache.cached_fit("demo", [x], {}, lambda: 3) == 2
    assert fitcache.STATS == {"hits": 1, "misses": 2}


def test_default_folder_is_the_projects_dot_molremote(tmp_path, monkeypatch):
    monkeypatch.delenv("MOLREMOTE_FIT_CACHE", raising=False)
    monkeypatch.setenv("MOLREMOTE_PROJECT", str(tmp_path))
    assert fitcache.cache_dir() == tmp_path.resolve() / ".molremote" / "fits"


@pytest.mark.slow  # umap-learn's numba compilation: 20-60 s on a busy 2-core machine
def test_umap_in_moa_preprocessing_is_fitted_once_across_runs(cache, tmp_path):
    pytest.importorskip("umap")
    from tests.tasks.moa.test_preprocess import fold_task

    t, tr, _ = fold_task(umap_genes=2, umap_cells=2)
    t.prepare_fold(0, tr, tmp_path / "run1")
    assert fitcache.STATS == {"hits": 0, "misses": 2}  # genes and cells
    # another run on the same fold rows (another seed, another training setting): its own run folder, so its
    # preprocessing is fitted again, but the two UMAP fits come from the cache
    t2, tr2, _ = fold_task(umap_genes=2, umap_cells=2)
    t2.prepare_fold(0, tr2, tmp_path / "run2")
    assert t2.preprocess_source == "fitted"
    assert fitcache.STATS == {"hits": 2, "misses": 2}
    np.testing.assert_array_equal(t2.x_train, t.x_train)
    assert len(list((cache / "umap").glob("*.pkl"))) == 2
