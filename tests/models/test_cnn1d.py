"""cnn1d: output shapes, the starter configuration's size, BatchNorm settings, padding-length behaviour."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from molremote.models.cnn1d import build  # noqa: E402
from molremote.models.params import Cnn1dParams  # noqa: E402

INFO = {"vocab_size": 39, "max_length": 142, "n_outputs": 3}


def test_starter_config_shapes_and_parameter_count():
    model = build(Cnn1dParams(), INFO)
    x = torch.randint(0, 39, (5, 142))
    assert model(x).shape == (5, 3)
    # Embedding 39x128; convs 128->32->64->96 (k=3, no bias) + BN; head 96->1024->1024->512 (no bias) + BN; 512->3
    expected = (
        39 * 128
        + 128 * 32 * 3
        + 2 * 32
        + 32 * 64 * 3
        + 2 * 64
        + 64 * 96 * 3
        + 2 * 96
        + 96 * 1024
        + 2 * 1024
        + 1024 * 1024
        + 2 * 1024
        + 1024 * 512
        + 2 * 512
        + 512 * 3
        + 3
    )
    assert sum(p.numel() for p in model.parameters()) == expected == 1_720_067


def test_batchnorm_uses_the_write_up_settings():
    model = build(Cnn1dParams(), INFO)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(bns) == 6
    assert all(bn.eps == 5e-3 and bn.momentum == 0.2 for bn in bns)


def test_small_config_and_outputs():
    p = Cnn1dParams(embed_dim=8, channels=[4, 8], hidden=[16], dropout=0.0)
    model = build(p, {"vocab_size": 39, "max_length": 20, "n_outputs": 2}).eval()
    x = torch.randint(1, 39, (3, 20))
    assert model(x).shape == (3, 2)
    # padding embeds to zeros (padding_idx=0) and gets no gradient
    assert model.embed(torch.zeros(1, 1, dtype=torch.long)).abs().sum() == 0


def test_sequence_too_short_for_the_convs_is_a_clear_error():
    with pytest.raises(ValueError, match="max_length 6 too short"):
        build(Cnn1dParams(), {"vocab_size": 39, "max_length": 6, "n_outputs": 3})


def test_one_training_step_reduces_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    p = Cnn1dParams(embed_dim=16, channels=[16, 16], hidden=[32], dropout=0.0)
    model = build(p, {"vocab_size": 39, "max_length": 30, "n_outputs": 3})
    x = torch.randint(1, 39, (32, 30))
    y = (x[:, :5] == 8).any(dim=1, keepdim=True).float().expand(-1, 3)  # a local pattern, as in SMILES
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
