"""gcn_text: Base/Big/Fat GCN towers, frozen text tower (no grads, not in checkpoints), LoRA via peft,
the packaged MiniLM loading offline, clear errors for unusable text models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_mean_pool

from molremote.errors import ExperimentError
from molremote.experiments import validate
from molremote.models import build_model
from molremote.models.gcn_text import GcnText, build
from molremote.models.params import GcnTextParams

pytestmark = pytest.mark.usefixtures("one_thread")  # fixture in tests/conftest.py


def graphs(n: int = 3, feat: int = 6) -> Batch:
    g = torch.Generator().manual_seed(0)
    data = []
    for k in range(n):
        nodes = 3 + k
        src = torch.arange(nodes - 1)
        e = torch.stack([torch.cat([src, src + 1]), torch.cat([src + 1, src])])  # a chain, both directions
        data.append(Data(x=torch.randn(nodes, feat, generator=g), edge_index=e))
    return Batch.from_data_list(data)


def texts(model: GcnText, items=("a small alcohol", "an aromatic acid with a nitro group", "methane")):
    t = model.tokenizer(list(items), padding=True, return_tensors="pt")
    return {"input_ids": t["input_ids"], "attention_mask": t["attention_mask"]}


def make(tiny_bert: str, **kw) -> GcnText:
    torch.manual_seed(0)
    p = GcnTextParams(**{"text_model": tiny_bert, "hidden": 8, "head_hidden": 8, "embed_dim": 4, "dropout": 0.0, **kw})
    return build(p, {"node_features": 6})


@pytest.mark.parametrize("layers, residual", [(3, False), (5, True), (7, True)])
def test_tower_depths_and_residual_pairs(tiny_bert, layers, residual):
    m = make(tiny_bert, num_layers=layers, residual=residual)
    tower = m.graph
    assert len(tower.convs) == layers
    b = graphs()
    # the forward pass by hand: residual skips around conv pairs (1,2), (3,4), (5,6)
    x = tower.convs[0](b.x, b.edge_index)
    skip = x
    for i in range(1, layers):
        x = tower.convs[i](F.relu(x), b.edge_index)
        if i % 2 == 0:
            x = x + skip if residual else x
            skip = x
    want = tower.norm(tower.head(global_mean_pool(x, b.batch)))
    got = tower(b.x, b.edge_index, b.batch, b.num_graphs)
    assert got.shape == (3, 4) and torch.allclose(got, want, atol=1e-6)
    if residual:  # the skips matter: the same weights without them give another output
        plain = make(tiny_bert, num_layers=layers, residual=False)
        plain.load_state_dict(m.state_dict())
        assert not torch.allclose(plain.graph(b.x, b.edge_index, b.batch, b.num_graphs), got)


def test_forward_gives_unit_embeddings_and_learnable_temperature(tiny_bert):
    m = make(tiny_bert, temperature=0.05)
    t, g = m({"graph": graphs(), **texts(m)})
    assert t.shape == g.shape == (3, 4)
    assert torch.allclose(t.norm(dim=1), torch.ones(3)) and torch.allclose(g.norm(dim=1), torch.ones(3))
    assert float(m.scale()) == pytest.approx(20.0)
    assert m.logit_scale.requires_grad
    assert not make(tiny_bert, learn_temperature=False).logit_scale.requires_grad


def test_frozen_text_tower_gets_no_grads_and_stays_out_of_checkpoints(tiny_bert):
    m = make(tiny_bert, freeze_text=True)
    m.train()
    assert not m.text_model.training  # no dropout in a frozen tower
    t, g = m({"graph": graphs(), **texts(m)})
    (t * g).sum().backward()
    assert all(q.grad is None for q in m.text_model.parameters())
    assert m.graph.convs[0].lin.weight.grad is not None and m.text_head[0].weight.grad is not None
    sd = m.state_dict()
    assert not any(k.startswith("text_model.") for k in sd) and "graph.convs.0.lin.weight" in sd
    other = make(tiny_bert, freeze_text=True)
    other.load_state_dict(sd)  # strict load works: the pretrained tower is kept
    assert torch.equal(other.text_head[0].weight, m.text_head[0].weight)
    groups = m.param_groups(1e-3)
    assert len(groups) == 1 and not any(q is p for q in groups[0]["params"] for p in m.text_model.parameters())


def test_trainable_tower_and_text_lr_group(tiny_bert):
    m = make(tiny_bert, freeze_text=False, text_lr=1e-5)
    t, g = m({"graph": graphs(), **texts(m)})
    (t * g).sum().backward()
    assert m.text_model.embeddings.word_embeddings.weight.grad is not None
    assert any(k.startswith("text_model.") for k in m.state_dict())

    class T:  # what the trainer passes: exp.training
        lr = 1e-3

    groups = m.param_groups(T())
    assert [g["lr"] for g in groups] == [1e-3, 1e-5]
    n_text = sum(1 for n, q in m.named_parameters() if n.startswith("text_model."))
    assert len(groups[1]["params"]) == n_text


def test_lora_trains_only_adapters(tiny_bert):
    m = make(tiny_bert, freeze_text=False, lora_r=4)
    trainable = [n for n, q in m.text_model.named_parameters() if q.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any("query" in n for n in trainable) and any("value" in n for n in trainable)
    before = {n: q.detach().clone() for n, q in m.text_model.named_parameters()}
    opt = torch.optim.Adam(m.param_groups(1e-2))
    batch = {"graph": graphs(), **texts(m)}
    for _ in range(3):
        t, g = m(batch)
        loss = F.cross_entropy(10 * t @ g.T, torch.arange(3))
        opt.zero_grad()
        loss.backward()
        opt.step()
    changed = {n for n, q in m.text_model.named_parameters() if not torch.equal(q, before[n])}
    assert changed and all("lora_" in n for n in changed)


def test_lora_with_frozen_tower_is_refused():
    with pytest.raises(ValueError, match="set freeze_text=False"):
        GcnTextParams(lora_r=8, freeze_text=True)


def test_packaged_minilm_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    m = build(GcnTextParams(text_model="minilm", embed_dim=8, pooling="mean"), {"node_features": 6})
    assert m.text_model.config.hidden_size == 384 and m.text_model.config.num_hidden_layers == 6
    t = texts(m, ("a carboxylic acid", "an aromatic amine"))
    with torch.no_grad():
        f = m.text_features(t["input_ids"], t["attention_mask"])
    assert f.shape == (2, 384) and torch.isfinite(f).all()
    # pretrained: related sentences are closer than unrelated ones
    t = texts(m, ("benzoic acid is a carboxylic acid", "a carboxylic acid on a benzene ring", "the weather is rainy"))
    with torch.no_grad():
        f = F.normalize(m.text_features(t["input_ids"], t["attention_mask"]), dim=1)
    assert float(f[0] @ f[1]) > float(f[0] @ f[2]) + 0.2


def test_unreachable_text_model_is_an_experiment_error(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import: patch the value
    with pytest.raises(ValueError, match=r"text_model folder .*/missing does not exist"):
        build(GcnTextParams(text_model=str(tmp_path / "missing")), {"node_features": 6})
    exp = validate(
        {
            "id": 3,
            "slug": "x",
            "task": "text2mol",
            "model": {"name": "gcn_text", "text_model": "no-such-org/no-such-model"},
        },
        file="exp.py",
    )
    with pytest.raises(ExperimentError, match=r"no-such-org/no-such-model.*cannot be loaded.*local copy"):
        build_model(exp, {"node_features": 300})
