"""tabular_mlp (MoA 1st place): block order, weight normalisation, parameter count, hyper-parameter checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from molremote.models.params import TabularMlpParams

torch = pytest.importorskip("torch")

from molremote.models.tabular_mlp import build  # noqa: E402 (imports torch: only after the importorskip above)

INFO = {"n_features": 875, "n_outputs": 206}


def test_winners_block_order_and_parameter_count():
    model = build(TabularMlpParams(), INFO)
    kinds = [type(m).__name__.replace("Parametrized", "") for m in model.net]  # weight_norm subclasses Linear
    assert kinds == [
        "BatchNorm1d",
        "Dropout",
        "Linear",
        "LeakyReLU",
        "BatchNorm1d",
        "Dropout",
        "Linear",
        "LeakyReLU",
        "BatchNorm1d",
        "Dropout",
        "Linear",
    ]
    assert [m.p for m in model.net if isinstance(m, torch.nn.Dropout)] == [0.15, 0.3, 0.25]
    # every Linear is weight-normalised: weight = g * v / |v| with one g per output row
    linears = [m for m in model.net if isinstance(m, torch.nn.Linear)]
    assert all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in linears)
    h = 2048
    expected = 2 * 875 + (875 * h + h + h) + 2 * h + (h * h + h + h) + 2 * h + (h * 206 + 206 + 206)
    assert sum(p.numel() for p in model.parameters()) == expected
    model.eval()
    assert model(torch.randn(4, 875)).shape == (4, 206)


def test_training_step_moves_the_direction_and_the_gain():
    model = build(TabularMlpParams(hidden=16), {"n_features": 6, "n_outputs": 3})
    lin = model.net[2]
    g0 = lin.parametrizations.weight.original0.detach().clone()
    v0 = lin.parametrizations.weight.original1.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(torch.randn(8, 6)), torch.ones(8, 3))
    loss.backward()
    opt.step()
    assert not torch.equal(g0, lin.parametrizations.weight.original0) and not torch.equal(
        v0, lin.parametrizations.weight.original1
    )


def test_bad_hidden_size_is_refused():
    with pytest.raises(ValidationError, match="must be >= 1"):
        TabularMlpParams(hidden=0)
