"""BELKA mamba: mamba_ssm parameter names and shapes, pure-torch scan vs a sequential reference, padding
invariance, weights moving between model instances by state dict."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from molremote.models import mamba as M
from molremote.models.params import MambaParams

INFO = {"vocab_size": 39, "max_length": 142, "n_outputs": 3}


def mamba_ssm_shapes(d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2) -> dict[str, tuple]:
    """state_dict of mamba_ssm.modules.mamba_simple.Mamba(d_model, d_state, d_conv, expand) with its
    defaults (bias=False, conv_bias=True, dt_rank='auto'), as written in its source."""
    d_inner, dt_rank = expand * d_model, math.ceil(d_model / 16)
    return {
        "in_proj.weight": (2 * d_inner, d_model),
        "conv1d.weight": (d_inner, 1, d_conv),
        "conv1d.bias": (d_inner,),
        "x_proj.weight": (dt_rank + 2 * d_state, d_inner),
        "dt_proj.weight": (d_inner, dt_rank),
        "dt_proj.bias": (d_inner,),
        "A_log": (d_inner, d_state),
        "D": (d_inner,),
        "out_proj.weight": (d_model, d_inner),
    }


@pytest.mark.parametrize("d_model,d_state,d_conv,expand", [(128, 16, 4, 2), (40, 8, 3, 1)])
def test_torch_mixer_has_mamba_ssm_names_and_shapes(d_model, d_state, d_conv, expand):
    mixer = M.torch_mixer(d_model, d_state, d_conv, expand)
    got = {k: tuple(v.shape) for k, v in mixer.state_dict().items()}
    assert got == mamba_ssm_shapes(d_model, d_state, d_conv, expand)
    model = M.build(MambaParams(d_model=d_model, d_state=d_state, d_conv=d_conv, expand=expand, n_layers=2), INFO)
    mixer_keys = {k.split("mixer.", 1)[1] for k in model.state_dict() if ".mixer." in k}
    assert mixer_keys == set(mamba_ssm_shapes(d_model))
    assert {k.split(".")[0] for k in mixer_keys} == set(M.MIXER_PARAMS)


def naive_mixer(mixer, x: torch.Tensor) -> torch.Tensor:
    """Mamba's forward written out step by step from the paper (h_t = exp(dt A) h_{t-1} + dt B_t x_t;
    y_t = C_t h_t + D x_t), with the mixer's weights: the reference for the parallel scan."""
    b, L, _ = x.shape
    d_inner = mixer.D.shape[0]
    d_state = mixer.A_log.shape[1]
    dt_rank = mixer.dt_proj.weight.shape[1]
    xz = mixer.in_proj(x)
    u, z = xz[..., :d_inner], xz[..., d_inner:]
    u = F.silu(mixer.conv1d(u.transpose(1, 2))[..., :L].transpose(1, 2))
    dbc = mixer.x_proj(u)
    dt, B, C = dbc[..., :dt_rank], dbc[..., dt_rank : dt_rank + d_state], dbc[..., dt_rank + d_state :]
    dt = F.softplus(mixer.dt_proj(dt))  # (b, L, d_inner)
    A = -torch.exp(mixer.A_log)
    h = torch.zeros(b, d_inner, d_state, dtype=x.dtype)
    ys = []
    for t in range(L):
        h = torch.exp(dt[:, t, :, None] * A) * h + dt[:, t, :, None] * B[:, t, None, :] * u[:, t, :, None]
        ys.append((h * C[:, t, None, :]).sum(-1) + mixer.D * u[:, t])
    y = torch.stack(ys, 1) * F.silu(z)
    return mixer.out_proj(y)


@pytest.mark.parametrize("L", [1, 7, 16, 37])
def test_parallel_scan_matches_sequential_reference(L):
    torch.manual_seed(L)
    mixer = M.torch_mixer(24, 8, 4, 2).double()
    x = torch.randn(3, L, 24, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(mixer(x), naive_mixer(mixer, x), rtol=1e-9, atol=1e-9)


def test_padding_does_not_change_the_output():
    torch.manual_seed(0)
    m = M.build(MambaParams(d_model=32, n_layers=2, dropout=0.0), INFO).eval()
    lengths = [9, 30, 17]
    t = torch.randint(1, 37, (3, 142))
    for i, n in enumerate(lengths):
        t[i, n:] = 0
    with torch.no_grad():
        full = m(t)
        alone = torch.cat([m(t[i : i + 1, : lengths[i]]) for i in range(3)])
        t2 = t.clone()
        t2[1, 3] = 1 + (t2[1, 3] % 36)
        changed = m(t2)
    torch.testing.assert_close(full, alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(changed[1], full[1]) and torch.allclose(changed[0], full[0])


def test_weights_load_across_instances_and_backend_choice():
    p = MambaParams(d_model=32, n_layers=2, dropout=0.0)
    a, b = M.build(p, INFO).eval(), M.build(p, INFO).eval()
    t = torch.randint(0, 37, (4, 50))
    b.load_state_dict(a.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(a(t), b(t))
    if M._mamba_ssm() is None:
        with pytest.raises(RuntimeError, match="mamba-ssm"):
            M.build(MambaParams(d_model=32, n_layers=1, backend="mamba_ssm"), INFO)
    assert (
        type(M.build(MambaParams(d_model=32, n_layers=1, backend="torch"), INFO).blocks[0].mixer).__module__
        == "mambapy.mamba"
    )
