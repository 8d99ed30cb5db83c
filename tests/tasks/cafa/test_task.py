"""The trainer side in-process: features through the embedding cache, losses (BCE, focal, weighted BCE) against
their formulas, the two heads, per-term thresholds and their calibration, the naive baseline."""

from __future__ import annotations

import numpy as np
import pytest

from molremote.tasks import get_task
from molremote.tasks.cafa.task import THRESHOLD_GRID, calibrate, search_thresholds

from .conftest import cafa_exp


@pytest.fixture
def task(project, tmp_path):
    t = get_task(cafa_exp(top_k_bp=60, top_k_mf=20, top_k_cc=20))
    t.load()
    tr, _ = t.split(0)
    t.prepare_fold(0, tr, tmp_path / "run")
    return t


def test_features_come_from_the_embedding_cache_standardised_on_the_fold(task, tmp_path, project):
    from molremote.embeddings import EmbeddingSpec, embed_sequences

    tr, _ = task.split(0)
    assert task.x_train.shape == (150, task.model_info()["n_features"]) and task.x_test.shape[0] == 38
    assert np.allclose(task.x_train[tr].mean(axis=0), 0, atol=1e-3)
    raw = embed_sequences(EmbeddingSpec("kmer:3"), task.data.train.sequences)  # cached by prepare_fold
    assert raw.dtype == np.float16 and raw.shape[0] == 150
    assert (tmp_path / "run" / "preprocess" / "features.npz").is_file()
    assert task.model_info()["aspect_sizes"] == [60, 20, 20]


def test_losses_follow_their_formulas(task):
    import torch

    from molremote.models import build_model

    model = build_model(task.exp, task.model_info())
    model.eval()
    idx = np.arange(8)
    x, y = task.batch("train", idx, "cpu")
    with torch.no_grad():
        logits = model(x).double()
        p = torch.sigmoid(logits)
        bce = -(y * torch.log(p) + (1 - y) * torch.log(1 - p))
        focal = torch.where(y == 1, 0.25 * (1 - p) ** 2, 0.75 * p**2) * bce
        w = torch.from_numpy(task.pos_weight).double()
        wbce = -(w * y * torch.log(p) + (1 - y) * torch.log(1 - p))
        for loss, want in (("bce", bce), ("focal", focal), ("weighted_bce", wbce)):
            task.params = task.params.model_copy(update={"loss": loss})
            assert float(task.loss(model, (x, y))) == pytest.approx(float(want.mean()), rel=1e-5), loss
    assert task.pos_weight.min() == pytest.approx(1.0) and task.pos_weight.max() <= 10.0


def test_the_multitask_head_concatenates_one_head_per_namespace(task):
    import torch

    from molremote.models.params import ProteinMultitaskParams
    from molremote.models.protein_heads import build_multitask

    info = task.model_info()
    m = build_multitask(ProteinMultitaskParams(shared=32, aspect_hidden=16), info)
    assert [h[-1].out_features for h in m.heads] == [60, 20, 20]
    assert m(torch.zeros(3, info["n_features"])).shape == (3, 100)
    with pytest.raises(ValueError, match="do not add up"):
        build_multitask(ProteinMultitaskParams(), {**info, "n_outputs": 99})


def test_per_term_thresholds_and_calibration():
    rng = np.random.default_rng(0)
    y = rng.random((200, 3)) < 0.3
    p = np.where(y, 0.6, 0.2) + rng.normal(0, 0.02, (200, 3))  # separable at any threshold in (0.25, 0.55)
    p[:, 2] = rng.random(200)
    y[:, 2] = False  # no positives: default 0.5
    t = search_thresholds(p, y)
    assert set(t[:2]) <= set(THRESHOLD_GRID) and t[2] == 0.5
    assert ((p[:, :2] >= t[:2]) == y[:, :2]).all()  # the chosen thresholds separate the two classes (F1 = 1)
    c = calibrate(p, t)
    assert ((c >= 0.5) == (p >= t)).all()  # a term's threshold maps to 0.5
    q = np.linspace(0, 1, 11)[:, None].repeat(3, axis=1)
    cq = calibrate(q, t)
    assert (np.diff(cq, axis=0) > 0).all() and cq[0].tolist() == [0, 0, 0] and cq[-1] == pytest.approx([1, 1, 1])


def test_the_baseline_is_the_naive_frequency_predictor(task):
    from molremote.tasks.cafa.metric import cafa_score

    tr, va = task.split(0)
    b = task.baseline_score(va)
    prot, term, score = task.naive_pairs(tr, va)
    assert len(np.unique(score)) > 10 and (np.bincount(prot)[va] == len(prot) // len(va)).all()
    d = task.data
    m = np.isin(d.truth_prot, va)
    assert b == pytest.approx(cafa_score(d.ont, d.ia, (d.truth_prot[m], d.truth_term[m]), (prot, term, score)).fmax_w)
    assert 0.3 < b < 0.7
