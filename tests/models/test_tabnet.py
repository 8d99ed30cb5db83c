"""tabnet: pytorch-tabnet's network inside molremote's trainer: shapes, the winners' settings reach the network,
the demo experiment (33) trains, resumes bit-identically after a stop, and evaluates."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_tabnet")

from molremote.models.params import TabNetParams  # noqa: E402
from molremote.models.tabnet import build  # noqa: E402

from .moa_demo import assert_same_run, demo_experiment, evaluate, train_uninterrupted_and_resumed  # noqa: E402


def test_logits_shape_and_the_winners_settings():
    model = build(TabNetParams(), {"n_features": 40, "n_outputs": 7})
    net = model.net
    assert (net.n_d, net.n_a, net.n_steps, net.gamma, net.virtual_batch_size) == (32, 32, 1, 1.3, 128)
    assert net.tabnet.encoder.att_transformers[0].selector.__class__.__name__ == "Entmax15"
    model.eval()
    out = model(torch.randn(5, 40))
    assert out.shape == (5, 7) and torch.isfinite(out).all()


@pytest.mark.slow  # three short trainings in-process: ~10 s on a busy 2-core machine
def test_demo_experiment_trains_resumes_exactly_and_evaluates(project, tmp_path):
    exp = demo_experiment(33, "training.epochs=2")
    ref, resumed = train_uninterrupted_and_resumed(exp, tmp_path)
    assert_same_run(ref, resumed)
    score = evaluate(resumed)
    assert score < 1.5  # two epochs from TabNet's large initial logits (~1.1-1.4 after epoch 1)
