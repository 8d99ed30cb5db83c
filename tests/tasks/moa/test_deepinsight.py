"""DeepInsight's feature -> pixel map: the convex-hull rotation makes the minimum bounding rectangle
axis-aligned, the binning covers the grid, the log scaling is DeepInsight's norm-2, and a fold's map is saved in
the run folder and reused (the t-SNE itself through the fit cache)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from molremote import fitcache
from molremote.tasks.moa import deepinsight
from molremote.tasks.moa.task import MoaTask

from .conftest import moa_exp


def test_rotation_aligns_a_tilted_rectangle_with_the_axes():
    rng = np.random.default_rng(0)
    corners = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 1.0], [0.0, 1.0]])
    pts = np.concatenate([corners, rng.uniform([0, 0], [4, 1], size=(300, 2))])  # a 4 x 1 rectangle ...
    a = np.deg2rad(30)
    tilt = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    tilted = pts @ tilt.T  # ... turned by 30 degrees
    rot = deepinsight.minimum_bounding_rotation(tilted)
    back = tilted @ rot.T
    w, h = sorted([np.ptp(back[:, 0]), np.ptp(back[:, 1])])
    assert (w, h) == (pytest.approx(1.0, abs=1e-9), pytest.approx(4.0, abs=1e-9))
    assert np.ptp(tilted[:, 0]) * np.ptp(tilted[:, 1]) > 1.5 * w * h  # the unrotated box was much larger


def test_pixel_coords_span_the_grid():
    xy = np.array([[0.0, 0.0], [1.0, 2.0], [0.5, 1.0], [1.0, 0.0]])
    c = deepinsight.pixel_coords(xy, 5)
    assert c.min() == 0 and c.max() == 4 and c.shape == (4, 2)
    assert c[0].tolist() == [0, 0] and c[1].tolist() == [4, 4]


def test_log_scaler_is_norm_2():
    x = np.array([[-1.0, 0.0], [1.0, 4.0], [3.0, 2.0]])
    s = deepinsight.LogScaler().fit(x)
    expected = np.log(x + np.abs(x.min(axis=0)) + 1)
    np.testing.assert_allclose(s.transform(x), expected / expected.max(), rtol=1e-6)
    assert s.transform(np.array([[-5.0, 100.0]])).tolist()[0][0] == 0.0  # below the fitted minimum: clipped


def test_a_folds_map_is_saved_reused_and_its_tsne_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("MOLREMOTE_FIT_CACHE", str(tmp_path / "fits"))
    monkeypatch.setitem(fitcache.STATS, "hits", 0)
    monkeypatch.setitem(fitcache.STATS, "misses", 0)
    params = {"quantile": False, "log_scale": True, "deepinsight_pixels": 12}
    t = MoaTask(moa_exp(None, **params))
    t.load()
    tr, _ = t.split(0)
    t.prepare_fold(0, tr, tmp_path / "run")
    info = t.model_info()
    saved = json.loads((tmp_path / "run/preprocess/deepinsight.json").read_text())
    assert info["pixels"] == 12 and info["pixel_index"] == saved["pixel_index"]
    idx = np.array(info["pixel_index"])
    assert len(idx) == info["n_features"] and idx.min() >= 0 and idx.max() < 144
    assert saved["occupied_pixels"] == len(np.unique(idx)) > 20  # features spread, not all on a few pixels
    assert 0 <= t.x_train.min() and t.x_train.max() <= 1  # norm-2 scaled into [0, 1]
    assert fitcache.STATS["misses"] == 1
    t2 = MoaTask(moa_exp(None, **params))  # a resumed session: the run's file, no t-SNE
    t2.load()
    t2.prepare_fold(0, tr, tmp_path / "run")
    assert t2.model_info()["pixel_index"] == info["pixel_index"] and fitcache.STATS == {"hits": 0, "misses": 1}
    t3 = MoaTask(moa_exp(None, **params))  # another run on the same rows: the cached t-SNE
    t3.load()
    t3.prepare_fold(0, tr, tmp_path / "other-run")
    assert t3.model_info()["pixel_index"] == info["pixel_index"] and fitcache.STATS["hits"] == 1


def test_log_scale_and_quantile_together_are_refused():
    from molremote.errors import ExperimentError

    with pytest.raises(ExperimentError, match="set quantile=False"):
        moa_exp(None, log_scale=True)
