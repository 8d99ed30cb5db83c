"""deepinsight: images from the pixel map (mean/min/max of the features sharing a pixel, 0 elsewhere), swap
noise only in training, the small CNN and the optional big backbones, and the demo experiment (35) trains,
resumes exactly and evaluates."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from molremote.models.deepinsight import build  # noqa: E402
from molremote.models.params import DeepInsightParams  # noqa: E402

from .moa_demo import assert_same_run, demo_experiment, evaluate, train_uninterrupted_and_resumed  # noqa: E402

INFO = {"n_features": 5, "n_outputs": 3, "pixels": 2, "pixel_index": [0, 0, 3, 0, 1]}


def test_images_hold_mean_min_max_per_pixel_and_zero_where_empty():
    model = build(DeepInsightParams(channels=(4,), fc_hidden=8), INFO)
    x = torch.tensor([[0.1, 0.5, 0.9, 0.3, 0.7]])
    img = model.images(x)
    assert img.shape == (1, 3, 2, 2)
    # pixel 0 = features 0, 1, 3; pixel 1 = feature 4; pixel 2 = none; pixel 3 = feature 2
    assert img[0, :, 0, 0].tolist() == pytest.approx([0.3, 0.1, 0.5])
    assert img[0, :, 0, 1].tolist() == pytest.approx([0.7] * 3)
    assert img[0, :, 1, 0].tolist() == [0.0, 0.0, 0.0]
    assert img[0, :, 1, 1].tolist() == pytest.approx([0.9] * 3)
    model.eval()
    assert model(x).shape == (1, 3)


def test_swap_noise_takes_features_from_other_rows_in_training_only():
    p = DeepInsightParams(swap_prob=1.0, swap_portion=0.5, swap_skip=2)
    model = build(p, {"n_features": 10, "n_outputs": 2, "pixels": 4, "pixel_index": list(range(10))})
    x = torch.arange(40, dtype=torch.float32).view(4, 10) * 100  # every value tells its row
    torch.manual_seed(0)
    model.train()
    noised = model.swap_noise(x)
    assert torch.equal(noised[:, :2], x[:, :2])  # the code columns are never swapped
    changed = (noised != x).sum(dim=1)
    assert (changed <= 4).all() and changed.sum() > 0  # at most int(8 * 0.5) features per row
    rows = (noised // 1000).long()  # each value still comes from some row of the batch
    assert ((noised % 100) == (x % 100)).all() and rows.max() < 4
    model.eval()
    assert torch.equal(model.swap_noise(x), x)


def test_a_map_for_other_features_is_refused():
    with pytest.raises(ValueError, match="covers 5 features, the data has 6"):
        build(DeepInsightParams(), {**INFO, "n_features": 6})


@pytest.mark.parametrize("backbone", ["efficientnet_b3", "resnest50_fast_2s2x40d"])
def test_big_backbones_build_from_the_optional_packages(backbone):
    pytest.importorskip("geffnet" if backbone == "efficientnet_b3" else "resnest")
    info = {"n_features": 30, "n_outputs": 4, "pixels": 32, "pixel_index": [i * 7 % 1024 for i in range(30)]}
    model = build(DeepInsightParams(backbone=backbone), info)
    model.eval()
    out = model(torch.rand(2, 30))
    assert out.shape == (2, 4) and torch.isfinite(out).all()
    assert isinstance(model.head[0], torch.nn.Linear) and model.head[0].out_features == 512


@pytest.mark.slow  # three short trainings in-process (t-SNE once, then cached): ~15 s on a busy 2-core machine
def test_demo_experiment_trains_resumes_exactly_and_evaluates(project, tmp_path, monkeypatch):
    monkeypatch.setenv("MOLREMOTE_FIT_CACHE", str(tmp_path / "fits"))
    exp = demo_experiment(35, "training.epochs=2")
    ref, resumed = train_uninterrupted_and_resumed(exp, tmp_path)
    assert_same_run(ref, resumed)
    assert (resumed / "preprocess" / "deepinsight.json").read_text() == (
        ref / "preprocess" / "deepinsight.json"
    ).read_text()
    evaluate(resumed)
