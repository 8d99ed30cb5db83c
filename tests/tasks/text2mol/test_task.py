"""Text2MolTask: loading and errors, folds, batches (cached and tokenized text), both losses learning,
predictions and the submission file; one real `molremote train` on the demo data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from molremote.errors import DataError, ExperimentError
from molremote.experiments import validate
from molremote.models import build_model
from molremote.tasks import get_task
from molremote.tasks.text2mol import data as td
from molremote.tasks.text2mol.task import Text2MolTask
from tests.conftest import ROOT, write_experiment

SMILES = [
    "CCO",
    "CC(=O)O",
    "c1ccccc1",
    "c1ccccc1O",
    "CCN",
    "CC(=O)Oc1ccccc1C(=O)O",
    "ClCCl",
    "C#N",
    "O=[N+]([O-])c1ccccc1",
    "CCCCCC",
    "NC(=O)c1ccncc1",
    "OCC(O)CO",
    "C",
    "CS",
]
WORDS = [
    "ethanol",
    "acetic acid",
    "benzene",
    "phenol",
    "ethylamine",
    "aspirin",
    "dichloromethane",
    "hydrogen cyanide",
    "nitrobenzene",
    "hexane",
    "isonicotinamide",
    "glycerol",
    "methane",
    "methanethiol",
]

pytestmark = pytest.mark.usefixtures("one_thread")  # fixture in tests/conftest.py


def make_data(root: Path, n_train: int = 8, n_val: int = 3) -> Path:
    """ALTEGRAD layout from real SMILES; CIDs 100+i; the last molecules are the test set (texts reversed)."""
    (root / "raw").mkdir(parents=True)
    ids = set()
    for i, s in enumerate(SMILES):
        g = td.graph_from_smiles(s)
        ids.update(g.ids)
        td.write_graph(root / "raw" / f"{100 + i}.graph", g)
    rng = np.random.default_rng(0)
    emb = {k: rng.normal(size=12).astype(np.float32) for k in sorted(ids)[: len(ids) - 3]}  # 3 ids -> UNK
    emb["UNK"] = np.zeros(12, np.float32)
    td.save_token_embeddings(root / "token_embedding_dict.npy", emb)
    pair = lambda i: f"{100 + i}\tThe molecule is {WORDS[i]}.\n"  # noqa: E731
    (root / "train.tsv").write_text("".join(pair(i) for i in range(n_train)))
    (root / "val.tsv").write_text("".join(pair(i) for i in range(n_train, n_train + n_val)))
    test = list(range(n_train + n_val, len(SMILES)))
    (root / "test_cids.txt").write_text("".join(f"{100 + i}\n" for i in test))
    (root / "test_text.txt").write_text("".join(f"The molecule is {WORDS[i]}.\n" for i in reversed(test)))
    return root


def exp_for(
    root: Path | None,
    text_model: str,
    *,
    loss: str = "contrastive",
    freeze: bool = False,
    folds: dict | None = None,
    **model,
):
    return validate(
        {
            "id": 1,
            "slug": "t",
            "task": {"name": "text2mol", "loss": loss, "text_max_length": 32},
            "model": {
                "name": "gcn_text",
                "text_model": text_model,
                "freeze_text": freeze,
                "hidden": 16,
                "head_hidden": 16,
                "embed_dim": 8,
                "dropout": 0.0,
                "pooling": "mean",
                **model,
            },
            "folds": folds or {"n_folds": 3},
            "data": {"root": str(root) if root else None},
        },
        file=None,
    )


@pytest.fixture
def data(tmp_path):
    return make_data(tmp_path / "t2m")


def ready(exp) -> tuple[Text2MolTask, torch.nn.Module]:
    task = get_task(exp)
    task.load()
    torch.manual_seed(0)
    model = build_model(exp, task.model_info())
    task.setup(model, torch.device("cpu"))
    return task, model


# ------------------------------------------------------------------------------------------- data
def test_load_reads_pool_test_and_unk(data, tiny_bert):
    task = get_task(exp_for(data, str(tiny_bert)))
    task.load()
    assert task.n_train() == 11 and task.n_test() == 3
    assert task.cids.tolist() == list(range(100, 111))
    assert task.official_valid.tolist() == [False] * 8 + [True] * 3
    assert task.model_info() == {"node_features": 12}
    assert 0 < task.unk_fraction < 1


def test_missing_file_names_it_and_how_to_get_it(tmp_path, tiny_bert):
    with pytest.raises(DataError, match=r"train.tsv not found.*ALTEGRAD"):
        get_task(exp_for(tmp_path / "nowhere", str(tiny_bert))).load()


def test_missing_graph_and_mismatched_test_files(data, tiny_bert):
    (data / "raw" / "101.graph").unlink()
    with pytest.raises(DataError, match=r"101.graph not found \(CID 101"):
        get_task(exp_for(data, str(tiny_bert))).load()
    td.write_graph(data / "raw" / "101.graph", td.graph_from_smiles("CC(=O)O"))
    (data / "test_text.txt").write_text("only one line\n")
    with pytest.raises(DataError, match="test_text.txt has 1 lines but .*test_cids.txt has 3"):
        get_task(exp_for(data, str(tiny_bert))).load()


def test_folds_random_and_official(data, tiny_bert):
    task = get_task(exp_for(data, str(tiny_bert), folds={"n_folds": 3, "seed": 1}))
    task.load()
    f = task.fold_assignment()
    assert sorted(np.bincount(f).tolist()) == [3, 4, 4]
    assert np.array_equal(f, task.fold_assignment())  # deterministic
    off = get_task(exp_for(data, str(tiny_bert), folds={"n_folds": 3, "scheme": "official"}))
    off.load()
    tr, va = off.split(0)
    assert off.cids[va].tolist() == [108, 109, 110]  # fold 0 is val.tsv exactly
    assert set(off.fold_assignment()[:8].tolist()) == {1, 2}
    bad = get_task(exp_for(data, str(tiny_bert), folds={"n_folds": 3, "scheme": "scaffold"}))
    bad.load()
    with pytest.raises(ExperimentError, match="folds.scheme.*unknown fold scheme 'scaffold'"):
        bad.fold_assignment()


# ------------------------------------------------------------------------------------------- batches
def test_batch_with_tokenized_text(data, tiny_bert):
    task, model = ready(exp_for(data, str(tiny_bert)))
    b = task.batch("train", np.array([0, 5]), torch.device("cpu"))
    g = b["graph"]
    assert g.num_graphs == 2
    n0, n5 = td.graph_from_smiles(SMILES[0]).n_nodes, td.graph_from_smiles(SMILES[5]).n_nodes
    assert g.x.shape == (n0 + n5, 12) and g.edge_index.shape[1] == 2 * (2 + 13)
    assert "text_feat" not in b and b["input_ids"].shape[0] == 2 and b["attention_mask"].dtype == torch.long
    # node features are the dictionary's vectors (UNK for unknown ids)
    emb = td.load_token_embeddings(data / "token_embedding_dict.npy")
    ids = td.graph_from_smiles(SMILES[0]).ids
    want = np.stack([emb.get(i, emb["UNK"]) for i in ids])
    assert np.array_equal(g.x[:n0].numpy(), want)


def test_batch_before_setup_is_a_clear_error(data, tiny_bert):
    task = get_task(exp_for(data, str(tiny_bert)))
    task.load()
    with pytest.raises(RuntimeError, match="setup"):
        task.batch("train", np.array([0]), torch.device("cpu"))


def test_frozen_tower_uses_cached_features_equal_to_live_ones(data, tiny_bert):
    task, model = ready(exp_for(data, str(tiny_bert), freeze=True))
    assert task._text_cache["train"].shape == (11, 32) and task._text_cache["test"].shape == (3, 32)
    idx = np.array([3, 1, 7])
    b = task.batch("train", idx, torch.device("cpu"))
    assert "input_ids" not in b
    tok = task._tokenize([task.texts[i] for i in idx], torch.device("cpu"))
    model.train()  # the frozen tower stays in eval mode: no dropout, features equal the cache
    with torch.no_grad():
        live = model.text_features(tok["input_ids"], tok["attention_mask"])
    assert torch.allclose(b["text_feat"], live, atol=1e-5)


@pytest.mark.parametrize("loss", ["contrastive", "binary_contrastive"])
@pytest.mark.parametrize("freeze", [False, True])
def test_losses_are_finite_and_decrease(data, tiny_bert, loss, freeze):
    task, model = ready(exp_for(data, str(tiny_bert), loss=loss, freeze=freeze))
    opt = torch.optim.Adam(model.param_groups(1e-2))
    b = task.batch("train", np.arange(8), torch.device("cpu"))
    losses = []
    for _ in range(15):
        lv = task.loss(model, b)
        opt.zero_grad()
        lv.backward()
        opt.step()
        losses.append(float(lv))
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0], losses


def test_contrastive_loss_value_is_two_cross_entropies(data, tiny_bert):
    task, model = ready(exp_for(data, str(tiny_bert), temperature=0.5, learn_temperature=False))
    model.eval()
    b = task.batch("train", np.arange(4), torch.device("cpu"))
    with torch.no_grad():
        t, g = model(b)
        logits = 2.0 * t @ g.T
        want = torch.nn.functional.cross_entropy(logits, torch.arange(4)) + torch.nn.functional.cross_entropy(
            logits.T, torch.arange(4)
        )
        assert float(task.loss(model, b)) == pytest.approx(float(want), rel=1e-5)


# ------------------------------------------------------------------------------------------- outputs
def test_predictions_score_and_submission(data, tiny_bert, tmp_path):
    task, model = ready(exp_for(data, str(tiny_bert)))
    model.eval()
    _, va = task.split(0)
    with torch.no_grad():
        out = task.predict(model, task.batch("train", va, torch.device("cpu")))
        test = task.predict(model, task.batch("test", np.arange(task.n_test()), torch.device("cpu")))
    assert out["text_emb"].shape == (len(va), 8) and np.allclose(np.linalg.norm(out["mol_emb"], axis=1), 1, atol=1e-5)
    assert task.score(va, out) == pytest.approx(td.lrap(out["text_emb"], out["mol_emb"]))
    assert task.baseline_score(va) == pytest.approx(sum(1 / k for k in range(1, len(va) + 1)) / len(va))

    p = task.write_predictions(tmp_path / "predictions", "valid", va, out)
    back = td.read_embeddings_parquet(p)
    assert back["id"].tolist() == task.cids[va].tolist() == back["text_id"].tolist()
    pt = td.read_embeddings_parquet(task.write_predictions(tmp_path / "predictions", "test", np.arange(3), test))
    assert pt["id"].tolist() == [111, 112, 113] and pt["text_id"].tolist() == [0, 1, 2]

    sub = task.write_submission(tmp_path / "submission.csv", test)
    lines = sub.read_text().splitlines()
    assert lines[0] == "ID,0,1,2" and len(lines) == 4
    assert [ln.split(",")[0] for ln in lines[1:]] == ["0", "1", "2"]
    vals = np.loadtxt(sub, delimiter=",", skiprows=1)[:, 1:]
    assert np.allclose(vals, td.cosine_similarity(test["text_emb"], test["mol_emb"]), atol=1e-6)
    from molremote.results.submission_files import check_submission
    from molremote.tasks.text2mol.results import submission_spec as text2mol_spec

    check_submission(sub, text2mol_spec(3))
    with pytest.raises(ValueError, match="all 3 test texts"):
        task.write_submission(tmp_path / "s2.csv", {k: v[:2] for k, v in test.items()})


# ------------------------------------------------------------------------------------------- end to end
@pytest.mark.integration
def test_molremote_train_on_demo_data_learns(tmp_path, tiny_bert):
    """The real trainer on the shipped demo data with a tiny frozen text tower: LRAP beats random."""
    (tmp_path / "experiments").mkdir()
    write_experiment(
        tmp_path,
        "0001_t2m.py",
        f"""EXPERIMENT = experiment(
    task={{"name": "text2mol", "text_max_length": 64}},
    model={{"name": "gcn_text", "text_model": {str(tiny_bert)!r}, "hidden": 64, "head_hidden": 64, "embed_dim": 32,
           "pooling": "mean"}},
    training={{"epochs": 3, "batch_size": 32, "lr": 3e-3, "device": "cpu"}},
    folds={{"n_folds": 5}})
""",
    )
    env = {**os.environ, "MOLREMOTE_PROJECT": str(tmp_path), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("MOLREMOTE_RUNS", None)
    r = subprocess.run(
        [str(Path(sys.executable).with_name("molremote")), "train", "-e", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    run = Path(r.stdout.strip().splitlines()[-1])
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "complete"
    assert m["best"]["value"] > 2 * m["baseline"], m
    sub = (run / "submission.csv").read_text().splitlines()
    assert sub[0] == "ID," + ",".join(map(str, range(150))) and len(sub) == 151
    ckpt = torch.load(run / "checkpoints" / "best.pt", map_location="cpu", weights_only=False)
    assert not any(k.startswith("text_model.") for k in ckpt["model"])  # frozen tower left out
    assert td.read_embeddings_parquet(run / "predictions" / "valid.parquet")["text_emb"].shape == (170, 32)
