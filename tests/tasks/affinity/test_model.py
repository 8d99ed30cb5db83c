"""clip_pl: towers run once per distinct protein / ligand, false negatives masked, learnable temperature,
regression head joint or detached; bad tower parameters refused when the experiment resolves."""

from __future__ import annotations

import pytest
import torch

from molremote.errors import ExperimentError
from molremote.experiments import validate
from molremote.models.clip_pl import ClipPl, info_nce
from molremote.models.params import ClipPlParams

INFO = {"protein_vocab": 22, "protein_max_length": 40, "smiles_vocab": 97, "smiles_max_length": 30}
SMALL = {"embed_dim": 8, "channels": [8, 8], "hidden": [16]}


def model(**kw) -> ClipPl:
    torch.manual_seed(0)
    p = ClipPlParams(protein_params=SMALL, ligand_params=SMALL, tower_dim=16, embed_dim=8, proj_hidden=16, **kw)
    return ClipPl(p, INFO)


def batch(n_prot=3, n_lig=4, prot_inv=(0, 0, 1, 2), lig_inv=(0, 1, 2, 3)):
    g = torch.Generator().manual_seed(1)
    return {
        "prot_x": torch.randint(1, 22, (n_prot, 40), generator=g),
        "prot_inv": torch.tensor(prot_inv),
        "lig_x": torch.randint(1, 97, (n_lig, 30), generator=g),
        "lig_inv": torch.tensor(lig_inv),
    }


def test_pairs_of_one_protein_share_its_embedding_and_outputs_are_unit_vectors():
    m = model().eval()
    p, lg, r = m(batch())
    assert r is None and p.shape == lg.shape == (4, 8)
    assert torch.equal(p[0], p[1]) and not torch.equal(p[1], p[2])
    assert torch.allclose(p.norm(dim=-1), torch.ones(4)) and torch.allclose(lg.norm(dim=-1), torch.ones(4))


def test_false_negatives_are_masked():
    p = torch.nn.functional.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(2)), dim=-1)
    lg = torch.nn.functional.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(3)), dim=-1)
    s = torch.tensor(10.0)
    prot, lig = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 2, 3])
    masked = info_nce(p, lg, s, prot, lig)
    # by hand: pair 0 and 1 share protein 0, so each leaves the other out of its softmax, both directions
    logits = s * p @ lg.T
    keep = torch.ones(4, 4, dtype=torch.bool)
    keep[0, 1] = keep[1, 0] = False
    rows = [torch.logsumexp(logits[i][keep[i]], 0) - logits[i, i] for i in range(4)]
    cols = [torch.logsumexp(logits[:, j][keep[:, j]], 0) - logits[j, j] for j in range(4)]
    assert masked == pytest.approx(float(0.5 * (torch.stack(rows).mean() + torch.stack(cols).mean())), abs=1e-6)
    assert masked != pytest.approx(float(info_nce(p, lg, s, None, None)), abs=1e-4)


def test_temperature_learns_and_the_detached_head_leaves_the_towers_alone():
    m = model(regression="detached")
    b = batch()
    p, lg, r = m(b)
    r.sum().backward()  # the head's loss alone
    assert all(q.grad is None or not q.grad.any() for q in m.ligand_tower.parameters())
    assert any(q.grad is not None and q.grad.any() for q in m.head.parameters())
    m.zero_grad()
    j = model(regression="joint")
    j(b)[2].sum().backward()
    assert any(q.grad is not None and q.grad.any() for q in j.ligand_tower.parameters())
    p, lg, _ = j(b)
    info_nce(p, lg, j.scale(), None, None).backward()
    assert j.logit_scale.grad is not None and j.logit_scale.requires_grad
    assert not model(learn_temperature=False).logit_scale.requires_grad


def test_bad_tower_parameters_are_refused_naming_the_tower():
    d = {"id": 1, "slug": "t", "task": {"name": "affinity"}}
    with pytest.raises(ExperimentError) as e:
        validate({**d, "model": {"name": "clip_pl", "ligand_params": {"channels": [8], "nope": 1}}}, file="x.py")
    assert "ligand_params for 'cnn1d'" in str(e.value) and "nope" in str(e.value)
    with pytest.raises(ExperimentError, match="cached tower has none"):
        validate({**d, "model": {"name": "clip_pl", "protein": "cached", "protein_params": {"hidden": [8]}}}, file=None)


def test_cached_protein_tower_reads_the_core_embedding_cache_and_trains(tmp_path, monkeypatch):
    """model.protein='cached': k-mer features from molremote.embeddings (torch-free, no download), projected."""
    import numpy as np

    from molremote.embeddings import EmbeddingSpec, embed_sequences
    from molremote.models import build_model
    from molremote.tasks import get_task

    monkeypatch.setenv("MOLREMOTE_EMBEDDINGS", str(tmp_path / "emb"))
    exp = validate(
        {
            "id": 5,
            "slug": "t",
            "task": {"name": "affinity", "affinity_column": "kiba_score", "affinity_unit": "score"},
            "model": {"name": "clip_pl", "protein": "cached", "protein_embedding": "kmer:3", "ligand_params": SMALL},
            "folds": {"n_folds": 5, "scheme": "protein"},
        },
        file=None,
    )
    task = get_task(exp)
    task.load()
    tr, va = task.split(0)
    task.prepare_fold(0, tr, tmp_path)
    expected = embed_sequences(EmbeddingSpec("kmer:3"), task.proteins).astype(np.float32)
    assert np.array_equal(task.prot_features, expected) and task.model_info()["protein_dim"] == expected.shape[1]
    torch.manual_seed(0)
    m = build_model(exp, task.model_info())
    b = task.batch("train", tr[:64], "cpu")
    assert b["prot_x"].dtype == torch.float32 and b["prot_x"].shape[1] == expected.shape[1]
    loss = task.loss(m, b)
    loss.backward()
    assert torch.isfinite(loss) and m.protein_proj[0].weight.grad.abs().sum() > 0
