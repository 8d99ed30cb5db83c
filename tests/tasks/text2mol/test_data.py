"""text2mol data files: .graph round trip and errors, SMILES -> Morgan r1 graphs, LRAP == sklearn, parquet."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem, RDLogger
from rdkit.Chem import AllChem
from sklearn.metrics import label_ranking_average_precision_score
from sklearn.metrics.pairwise import cosine_similarity

from molremote.errors import DataError
from molremote.tasks.base import DEMO_ROOT
from molremote.tasks.text2mol import data as td

RDLogger.DisableLog("rdApp.*")  # GetMorganFingerprint prints a deprecation notice; the test uses it on purpose


def sk_lrap(sim: np.ndarray) -> float:
    return float(label_ranking_average_precision_score(np.eye(len(sim)), sim))


# ------------------------------------------------------------------------------------------- .graph
def test_graph_round_trip(tmp_path):
    g = td.Graph(edges=np.array([[0, 1], [1, 0], [1, 2], [2, 1]]), ids=["2246728737", "864674487", "UNK"])
    p = td.write_graph(tmp_path / "raw" / "7.graph", g)
    assert p.read_text() == "edgelist:\n0 1\n1 0\n1 2\n2 1\n\nidx to identifier:\n0 2246728737\n1 864674487\n2 UNK\n"
    back = td.read_graph(p)
    assert back.ids == g.ids and np.array_equal(back.edges, g.edges)


def test_single_atom_graph_has_no_edges(tmp_path):
    g = td.graph_from_smiles("C")
    assert g.edges.shape == (0, 2) and len(g.ids) == 1
    back = td.read_graph(td.write_graph(tmp_path / "1.graph", g))
    assert back.edges.shape == (0, 2) and back.ids == g.ids


@pytest.mark.parametrize(
    "text, msg",
    [
        ("0 1\n", "line 1 must be 'edgelist:'"),
        ("edgelist:\n0 x\n\nidx to identifier:\n0 5\n", "line 2"),
        ("edgelist:\n0 1\n", "expected 'idx to identifier:'"),
        ("edgelist:\n0 3\n\nidx to identifier:\n0 5\n1 6\n", "outside 0..1"),
        ("edgelist:\n\nidx to identifier:\n", "no nodes"),
    ],
)
def test_malformed_graph_names_file_and_problem(tmp_path, text, msg):
    p = tmp_path / "bad.graph"
    p.write_text(text)
    with pytest.raises(DataError, match=msg) as e:
        td.read_graph(p)
    assert "bad.graph" in str(e.value)


@pytest.mark.parametrize("smiles", ["CC(=O)Oc1ccccc1C(=O)O", "c1ccc2[nH]ccc2c1", "O=[N+]([O-])c1ccc(Cl)cc1", "CCO"])
def test_graph_ids_are_rdkit_morgan_radius1_ids(smiles):
    m = Chem.MolFromSmiles(smiles)
    info: dict = {}
    AllChem.GetMorganFingerprint(m, 1, bitInfo=info)  # the call ChEBI-20 / Mol2Vec use
    per_atom: dict[int, dict[int, int]] = {}
    for env, hits in info.items():
        for atom, r in hits:
            per_atom.setdefault(atom, {})[r] = env
    want = [str(per_atom[a].get(1, per_atom[a][0])) for a in range(m.GetNumAtoms())]
    g = td.graph_from_smiles(smiles)
    assert g.ids == want
    assert len(g.edges) == 2 * m.GetNumBonds()
    assert {tuple(e) for e in g.edges.tolist()} == {(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in m.GetBonds()} | {
        (b.GetEndAtomIdx(), b.GetBeginAtomIdx()) for b in m.GetBonds()
    }


def test_two_atom_molecule_falls_back_to_radius0():
    # both atoms of ethane have the same radius-1 bond set: RDKit keeps that environment once (atom 0), so
    # atom 1 carries its radius-0 id, as in Mol2Vec sentences
    info: dict = {}
    AllChem.GetMorganFingerprint(Chem.MolFromSmiles("CC"), 1, bitInfo=info)
    r1 = [env for env, hits in info.items() if hits[0][1] == 1]
    r0 = [env for env, hits in info.items() if hits[0][1] == 0]
    assert td.graph_from_smiles("CC").ids == [str(r1[0]), str(r0[0])]


def test_bad_smiles_is_a_data_error():
    with pytest.raises(DataError, match="cannot parse SMILES 'C1CC'"):
        td.graph_from_smiles("C1CC")


# ------------------------------------------------------------------------------------------- other files
def test_token_embeddings_round_trip_and_checks(tmp_path):
    d = {"123": np.arange(4, dtype=np.float32), "UNK": np.zeros(4, np.float32)}
    p = td.save_token_embeddings(tmp_path / "token_embedding_dict.npy", d)
    back = np.load(p, allow_pickle=True)[()]  # the way ALTEGRAD code loads it
    assert set(back) == {"123", "UNK"} and np.array_equal(back["123"], d["123"])
    mat, index = td.embedding_matrix(td.load_token_embeddings(p))
    assert mat.shape == (2, 4) and np.array_equal(mat[index["123"]], d["123"])
    td.save_token_embeddings(tmp_path / "nounk.npy", {"1": np.zeros(4)})
    with pytest.raises(DataError, match="no 'UNK' key"):
        td.load_token_embeddings(tmp_path / "nounk.npy")
    td.save_token_embeddings(tmp_path / "ragged.npy", {"1": np.zeros(4), "UNK": np.zeros(3)})
    with pytest.raises(DataError, match="same size"):
        td.load_token_embeddings(tmp_path / "ragged.npy")


def test_pairs_cids_lines(tmp_path):
    (tmp_path / "train.tsv").write_text("12\tA molecule.\n7\tAnother one, with\ttab.\n")
    cids, texts = td.read_pairs(tmp_path / "train.tsv")
    assert cids.tolist() == [12, 7] and texts == ["A molecule.", "Another one, with\ttab."]
    (tmp_path / "bad.tsv").write_text("12\tok\nCID\tdescription\n")
    with pytest.raises(DataError, match=r"bad.tsv: line 2"):
        td.read_pairs(tmp_path / "bad.tsv")
    (tmp_path / "test_cids.txt").write_text("5\n9\n")
    assert td.read_cids(tmp_path / "test_cids.txt").tolist() == [5, 9]


def test_demo_data_is_consistent():
    d = DEMO_ROOT / "text2mol"
    tr, _ = td.read_pairs(d / "train.tsv")
    va, _ = td.read_pairs(d / "val.tsv")
    te = td.read_cids(d / "test_cids.txt")
    assert len(td.read_lines(d / "test_text.txt")) == len(te)
    cids = np.concatenate([tr, va, te])
    assert len(set(cids.tolist())) == len(cids)  # no molecule in two splits
    emb = td.load_token_embeddings(d / "token_embedding_dict.npy")
    assert next(iter(emb.values())).shape == (300,)
    g = td.read_graph(d / "raw" / f"{tr[0]}.graph")
    assert sum(i in emb for i in g.ids) >= len(g.ids) // 2  # most node ids have a vector


# ------------------------------------------------------------------------------------------- metric
@pytest.mark.parametrize("seed", range(4))
def test_lrap_equals_sklearn_on_random_embeddings(seed):
    rng = np.random.default_rng(seed)
    n = [1, 7, 50, 300][seed]
    t, m = rng.normal(size=(n, 16)), rng.normal(size=(n, 16))
    m[: n // 2] += 2 * t[: n // 2]  # some signal, so ranks vary
    assert td.lrap(t, m) == pytest.approx(sk_lrap(cosine_similarity(t, m)), abs=1e-12)


@pytest.mark.parametrize("decimals", [0, 1])
def test_lrap_ties_are_pessimistic_like_sklearn(decimals):
    rng = np.random.default_rng(decimals)
    sim = np.round(rng.uniform(-1, 1, size=(120, 120)), decimals)  # many exact ties
    assert td.lrap_from_similarity(sim, chunk=17) == pytest.approx(sk_lrap(sim), abs=1e-12)
    const = np.zeros((5, 5))
    assert td.lrap_from_similarity(const) == pytest.approx(sk_lrap(const)) == pytest.approx(0.2)


def test_lrap_duplicate_molecules_tie():
    t = np.eye(3)
    m = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]])  # molecules 0 and 1 identical
    # text 0: molecule 0 ties with 1 -> 1/2; text 1: its molecule scores 0 vs two others at 0 -> 1/3;
    # text 2: rank 1
    assert td.lrap(t, m) == pytest.approx((1 / 2 + 1 / 3 + 1) / 3)
    assert td.lrap(t, m) == pytest.approx(sk_lrap(cosine_similarity(t, m)))


def test_random_lrap_matches_simulation():
    n = 40
    rng = np.random.default_rng(0)
    sims = [td.lrap_from_similarity(rng.normal(size=(n, n))) for _ in range(300)]
    assert td.random_lrap(n) == pytest.approx(sum(1 / k for k in range(1, n + 1)) / n)
    assert np.mean(sims) == pytest.approx(td.random_lrap(n), abs=0.01)


# ------------------------------------------------------------------------------------------- outputs
def test_embeddings_parquet_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    t, m = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=(5, 8)).astype(np.float32)
    p = td.write_embeddings_parquet(
        tmp_path / "predictions" / "valid.parquet", np.arange(10, 15), np.arange(10, 15), t, m
    )
    import pyarrow.parquet as pq

    schema = pq.read_schema(p)
    assert str(schema.field("text_emb").type) == "fixed_size_list<element: float>[8]"
    back = td.read_embeddings_parquet(p)
    assert back["id"].tolist() == list(range(10, 15)) and np.array_equal(back["mol_emb"], m)
    assert np.array_equal(back["text_emb"], t)


def test_similarity_submission_format(tmp_path):
    sim = np.array([[0.5, -0.25, 1 / 3], [0.1, 0.2, 0.3]])
    p = td.write_similarity_submission(tmp_path / "submission.csv", sim)
    lines = p.read_text().splitlines()
    assert lines[0] == "ID,0,1,2"
    assert lines[1].startswith("0,0.5,-0.25,0.333333") and lines[2].startswith("1,")
    back = np.loadtxt(p, delimiter=",", skiprows=1)
    assert np.array_equal(back[:, 1:].astype(np.float32), sim.astype(np.float32))
