"""DeepInsight (Sharma et al. 2019) feature -> pixel mapping, the MoA 1st place CNNs' input (torch-free).

Features are the points: t-SNE (scikit-learn; cosine metric, perplexity 5, exact, as the winners) embeds the
transposed feature matrix (n_features x n_rows) in 2-D; the convex hull of the embedding (scipy) gives the
minimum-area bounding rectangle, which is rotated to be axis-aligned; the rotated coordinates are binned on a
pixels x pixels grid. Features that land on the same pixel are combined per image as mean / min / max channels
(the winners' 3-channel trick; models/deepinsight.py builds the images). The mapping is fitted per fold on the
rows the preprocessing was fitted on, saved as `<run>/preprocess/deepinsight.json` and reused on resume; the
t-SNE itself is cached by content hash (molremote/fitcache.py), so folds fitted on the same rows share it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...fsutil import write_json

FILE = "deepinsight.json"


class LogScaler:
    """DeepInsight's "norm-2" scaling (the winners' LogScaler): log(x - min0 + 1) per feature, divided by the
    largest such value over the fitted matrix, clipped to [0, 1]."""

    def fit(self, x: np.ndarray) -> LogScaler:
        self.min0 = x.min(axis=0)
        self.max = float(np.log(x + np.abs(self.min0) + 1).max())
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = np.log(np.maximum(x, self.min0) + np.abs(self.min0) + 1).clip(0, None)
        return (z / self.max).clip(0, 1).astype(np.float32)


def minimum_bounding_rotation(points: np.ndarray) -> np.ndarray:
    """The 2x2 rotation that makes the minimum-area rectangle around `points` (via their convex hull) axis-aligned."""
    from scipy.spatial import ConvexHull

    hull = points[ConvexHull(points).vertices]
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unique(np.abs(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2)))
    best, best_area = np.eye(2), np.inf
    for a in angles:
        rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
        r = hull @ rot.T
        area = float(np.ptp(r[:, 0]) * np.ptp(r[:, 1]))
        if area < best_area - 1e-12:
            best, best_area = rot, area
    return best


def pixel_coords(xy: np.ndarray, pixels: int) -> np.ndarray:
    """(n, 2) integer pixel coordinates in [0, pixels) of rotated 2-D points (the winners' np.digitize binning)."""
    out = []
    for d in range(2):
        v = xy[:, d]
        bins = np.linspace(v.min(), v.max(), pixels)
        out.append(np.clip(np.digitize(v, bins) - 1, 0, pixels - 1))
    return np.stack(out, axis=1)


def fit_mapping(x: np.ndarray, pixels: int, perplexity: float, method: str, seed: int) -> dict[str, Any]:
    """t-SNE over the columns of `x` (rows = samples), convex-hull rotation, binning: the mapping as data."""
    from sklearn.manifold import TSNE

    from ...fitcache import cached_fit

    feats = np.ascontiguousarray(x.T, dtype=np.float64)
    # t-SNE needs perplexity < number of points (features)
    perp = min(perplexity, max(1.0, (feats.shape[0] - 1) / 3))
    kw = {"n_components": 2, "metric": "cosine", "perplexity": perp, "method": method, "random_state": seed}
    emb = cached_fit("tsne", [feats], {**kw, "init": "random"}, lambda: TSNE(init="random", **kw).fit_transform(feats))
    xy = emb @ minimum_bounding_rotation(emb).T
    if np.ptp(xy[:, 0]) < np.ptp(xy[:, 1]):  # landscape, as the winners' rotation gave
        xy = xy[:, ::-1]
    coords = pixel_coords(xy, pixels)
    index = coords[:, 0] * pixels + coords[:, 1]
    return {
        "pixels": pixels,
        "pixel_index": index.astype(int).tolist(),
        "n_features": int(x.shape[1]),
        "occupied_pixels": int(len(np.unique(index))),
        "perplexity": perp,
        "method": method,
    }


def fit_or_load(x_fit: np.ndarray, pixels: int, perplexity: float, method: str, seed: int, folder: Path) -> dict:
    """The run's mapping: `folder/deepinsight.json` when a previous session saved it (same feature count), else
    fitted on `x_fit` and saved."""
    path = Path(folder) / FILE
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("n_features") == x_fit.shape[1] and saved.get("pixels") == pixels:
            return saved
    m = fit_mapping(x_fit, pixels, perplexity, method, seed)
    write_json(path, m)
    return m
