"""BELKA task: long <-> wide, folds, the organisers' metric, split groups, prediction and submission files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from molremote.errors import DataError, ExperimentError, SubmissionError
from molremote.experiments import validate
from molremote.tasks.belka import task as belka
from molremote.tasks.belka.metric import belka_ap, cell_scores, split_groups
from molremote.tasks.belka.task import BelkaTask

COLS = [
    "id",
    "buildingblock1_smiles",
    "buildingblock2_smiles",
    "buildingblock3_smiles",
    "molecule_smiles",
    "protein_name",
    "binds",
]
# (bb1, bb2, bb3) -> a molecule SMILES in the BELKA alphabet; the exact chemistry does not matter here
BB1 = ["A1", "A2", "A3", "A4"]
BB23 = ["N1", "N2", "N3", "N4", "N5"]


def mol_smiles(a: int, b: int, c: int) -> str:
    return f"C{'C' * a}(=O)N[Dy]" + "c1ccccc1" * (b + 1) + "O" * (c + 1)


def exp_for(root: Path | None = None, **folds) -> object:
    d = {"id": 1, "slug": "t", "task": "belka", "model": "cnn1d", "folds": {"n_folds": 3, **folds}}
    if root is not None:
        d["data"] = {"root": str(root)}
    return validate(d, file=None)


def write_long(root: Path, train_rows: list[tuple], test_rows: list[tuple]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(train_rows, columns=COLS).to_parquet(root / "train.parquet", index=False)
    pd.DataFrame(test_rows, columns=COLS[:-1]).to_parquet(root / "test.parquet", index=False)


@pytest.fixture
def small(tmp_path, monkeypatch):
    """Train: 3 molecules (one missing HSA; rows of a molecule adjacent, proteins in any order);
    test: 3 molecules with 3, 1 and 2 protein rows; ids not in molecule order."""
    monkeypatch.setenv("MOLREMOTE_CACHE", str(tmp_path / "cache"))
    m0, m1, m2 = mol_smiles(0, 0, 0), mol_smiles(1, 1, 1), mol_smiles(2, 2, 0)
    train = [
        (0, "A1", "N1", "N2", m0, "BRD4", 0),
        (7, "A1", "N1", "N2", m0, "sEH", 1),
        (1, "A1", "N1", "N2", m0, "HSA", 1),
        (2, "A2", "N2", "N3", m1, "BRD4", 1),
        (3, "A2", "N2", "N3", m1, "sEH", 0),  # m1 has no HSA row
        (4, "A3", "N3", "N1", m2, "BRD4", 0),
        (5, "A3", "N3", "N1", m2, "HSA", 0),
        (6, "A3", "N3", "N1", m2, "sEH", 1),
    ]
    t0, t1, t2 = mol_smiles(0, 1, 2), mol_smiles(3, 0, 0), mol_smiles(1, 2, 2)
    test = [
        (100, "A1", "N1", "N3", t0, "BRD4"),
        (101, "A1", "N1", "N3", t0, "HSA"),
        (102, "A1", "N1", "N3", t0, "sEH"),
        (104, "A9", "N4", "N1", t1, "HSA"),
        (103, "A2", "N5", "N2", t2, "BRD4"),
        (105, "A2", "N5", "N2", t2, "sEH"),
    ]
    write_long(tmp_path / "data", train, test)
    return tmp_path / "data", train, test


@pytest.mark.parametrize("prepared", [False, True])
def test_long_to_wide_and_back(small, prepared, tmp_path, monkeypatch):
    root, train, test = small
    if prepared:  # large-file path: prepared once into memory maps in the cache
        monkeypatch.setattr(belka, "IN_MEMORY_MAX_ROWS", 0)
    task = BelkaTask(exp_for(root))
    task.load()
    assert (task.n_train(), task.n_test()) == (3, 3)
    # one row per molecule, one column per protein; absent cells are -1
    assert task.train.ids.tolist() == [[0, 1, 7], [2, -1, 3], [4, 5, 6]]
    assert task.train.labels.tolist() == [[0, 1, 1], [1, -1, 0], [0, 0, 1]]
    assert task.test.ids.tolist() == [[100, 101, 102], [-1, 104, -1], [103, -1, 105]]
    assert (task.test.labels == -1).all()
    # building blocks: one vocabulary for all positions; test block A9 and N4, N5 are new
    names = task.bb_names
    assert [names[i] for i in task.train.bb[0]] == ["A1", "N1", "N2"]
    assert task.test_split_groups().tolist() == ["share", "nonshare", "nonshare"]
    from molremote.tasks.belka.tokens import decode

    assert decode(np.asarray(task.train.tokens)) == [mol_smiles(0, 0, 0), mol_smiles(1, 1, 1), mol_smiles(2, 2, 0)]
    if prepared:
        assert not isinstance(task.train.tokens, np.ndarray) or task.train.tokens.base is not None
        assert (tmp_path / "cache" / "belka").is_dir() and any((tmp_path / "cache" / "belka").iterdir())
        again = BelkaTask(exp_for(root))
        again.load()  # from the cache: same content
        assert again.train.ids.tolist() == task.train.ids.tolist() and again.bb_names == task.bb_names
        np.testing.assert_array_equal(np.asarray(again.test.tokens), np.asarray(task.test.tokens))

    # predictions map back to row ids by protein
    probs = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]])
    out = tmp_path / "pred"
    p = task.write_predictions(out, "test", np.arange(3), {"probs": probs})
    df = pd.read_parquet(p)
    assert df.columns.tolist() == ["id", "protein_name", "binds"]
    assert df.id.tolist() == [100, 101, 102, 103, 104, 105]
    assert df.protein_name.tolist() == ["BRD4", "HSA", "sEH", "BRD4", "HSA", "sEH"]
    assert df.binds.tolist() == [0.1, 0.2, 0.3, 0.7, 0.5, 0.9]
    v = pd.read_parquet(task.write_predictions(out, "valid", np.array([2, 0]), {"probs": probs[:2]}))
    assert v.columns.tolist() == ["id", "protein_name", "binds", "binds_true", "split_group"]
    assert v.id.tolist() == [0, 1, 4, 5, 6, 7]
    assert v.binds.tolist() == [0.4, 0.5, 0.1, 0.2, 0.3, 0.6]
    want = {r[0]: r[6] for r in train}
    assert v.binds_true.tolist() == [want[i] for i in v.id]
    # with molecules 2 and 0 held out only m1 (A2, N2, N3) is training: neither is fully seen
    assert set(v.split_group) == {"nonshare"}


def test_submission_one_row_per_test_id_sorted(small, tmp_path):
    root, _, test = small
    task = BelkaTask(exp_for(root))
    task.load()
    probs = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]])
    path = task.write_submission(tmp_path / "run" / "submission.csv", {"probs": probs})
    lines = path.read_text().splitlines()
    assert lines[0] == "id,binds"
    rows = [ln.split(",") for ln in lines[1:]]
    assert [int(r[0]) for r in rows] == sorted(r[0] for r in test)
    assert [float(r[1]) for r in rows] == [0.1, 0.2, 0.3, 0.7, 0.5, 0.9]
    # non-finite or out-of-range predictions are refused and the existing file is kept
    for bad in (np.nan, 1.5, -0.1):
        with pytest.raises(SubmissionError):
            task.write_submission(path, {"probs": np.where(probs > 0.85, bad, probs)})
    assert path.read_text().splitlines() == lines


def test_missing_data_names_the_file_and_how_to_get_it(tmp_path):
    task = BelkaTask(exp_for(tmp_path / "nowhere"))
    with pytest.raises(DataError) as e:
        task.load()
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "train.parquet") in msg
    assert "kaggle competitions download -c leash-BELKA" in msg and "data.root" in msg


def test_bad_files_name_row_and_value(tmp_path):
    # the same reader (reader.py) and wording as prepare: "<file>: row <file row> (id <row id>): <what>"
    root = tmp_path / "d"
    good = (0, "A1", "N1", "N2", "CCO", "BRD4", 0)
    write_long(root, [good, (11, "A1", "N1", "N2", "CCO", "KRAS", 0)], [])
    with pytest.raises(DataError, match=r"train.parquet: row 1 \(id 11\): protein_name 'KRAS' is not one of"):
        BelkaTask(exp_for(root)).load()
    write_long(root, [good, (11, "A2", "N1", "N2", "CCP", "BRD4", 0)], [])
    with pytest.raises(DataError, match=r"row 1 \(id 11\): unknown character 'P'"):
        BelkaTask(exp_for(root)).load()
    write_long(root, [good, (11, "A1", "N1", "N2", "CCO", "BRD4", 1)], [])
    with pytest.raises(DataError, match=r"row 1 \(id 11\): a second row for molecule 'CCO' and protein 'BRD4'"):
        BelkaTask(exp_for(root)).load()
    write_long(root, [good, (11, "A1", "N1", "N2", "CCN", "BRD4", 2)], [])
    with pytest.raises(DataError, match=r"row 1 \(id 11\): binds=2, expected 0 or 1"):
        BelkaTask(exp_for(root)).load()
    write_long(root, [good, (11, "A1", "N1", "N2", "CCN", "HSA", 1), (12, "A1", "N1", "N2", "CCN", "BRD4", 0)], [])
    train = pd.read_parquet(root / "train.parquet").astype({"binds": str})
    train.to_parquet(root / "train.parquet")
    with pytest.raises(DataError, match=r"column 'binds' has type (large_)?string, expected an integer"):
        BelkaTask(exp_for(root)).load()
    pd.DataFrame([good[:5]], columns=COLS[:5]).to_parquet(root / "train.parquet")
    with pytest.raises(DataError, match=r"missing column\(s\) \['protein_name', 'binds'\]"):
        BelkaTask(exp_for(root)).load()


def test_molecule_recurring_after_others_is_refused_like_prepare(tmp_path):
    """Rows of one molecule must be adjacent (the competition files are molecule-major): the in-memory read
    refuses a recurring molecule wherever it recurs, naming both row ids, as prepare does in a batch."""
    root = tmp_path / "d"
    m0, m1 = mol_smiles(0, 0, 0), mol_smiles(1, 1, 1)
    write_long(
        root,
        [
            (0, "A1", "N1", "N2", m0, "BRD4", 0),
            (1, "A2", "N2", "N3", m1, "BRD4", 1),
            (2, "A2", "N2", "N3", m1, "HSA", 1),
            (3, "A1", "N1", "N2", m0, "HSA", 1),
        ],
        [],
    )
    with pytest.raises(DataError, match=r"row 3 \(id 3\): molecule '.*' \(first at row id 0\) appears again"):
        BelkaTask(exp_for(root)).load()
    # beyond a record batch: only the whole-file check sees it
    from molremote.tasks.belka import task as task_mod

    task_mod_rows = task_mod.READ_BATCH_ROWS
    try:
        task_mod.READ_BATCH_ROWS = 1
        with pytest.raises(DataError, match=r"row 3 \(id 3\): .*first at row id 0"):
            BelkaTask(exp_for(root)).load()
    finally:
        task_mod.READ_BATCH_ROWS = task_mod_rows


def test_protein_subset_selects_columns_of_every_molecule(small):
    root, _, _ = small
    exp = validate(
        {
            "id": 1,
            "slug": "t",
            "task": {"name": "belka", "proteins": ["sEH", "BRD4"]},
            "model": "cnn1d",
            "folds": {"n_folds": 3},
            "data": {"root": str(root)},
        },
        file=None,
    )
    task = BelkaTask(exp)
    task.load()
    assert task.train.ids.tolist() == [[7, 0], [3, 2], [6, 4]]
    assert task.test.ids.tolist() == [[102, 100], [-1, -1], [105, 103]]  # t1 has only HSA: all absent


def test_unknown_fold_scheme_is_refused():
    with pytest.raises(ExperimentError, match="folds.scheme"):
        BelkaTask(exp_for(None, scheme="scaffold"))


# ---------------------------------------------------------------------------------------------- metric
def test_metric_is_mean_of_per_cell_sklearn_ap_not_micro_ap():
    rng = np.random.default_rng(0)
    n = 3000
    prot = rng.choice(["BRD4", "HSA", "sEH"], n)
    grp = rng.choice(["share", "nonshare"], n, p=[0.7, 0.3])
    # cells with different positive rates and different score scales: micro AP mixes them, the metric not
    rate = {"BRD4": 0.02, "HSA": 0.1, "sEH": 0.3}
    y = (rng.random(n) < np.vectorize(rate.get)(prot)).astype(int)
    p = np.clip(0.3 * y + rng.random(n) * np.where(prot == "sEH", 1.0, 0.5), 0, 1)
    direct = []
    for pn in ("BRD4", "HSA", "sEH"):
        for g in ("share", "nonshare"):
            s = (prot == pn) & (grp == g)
            direct.append(average_precision_score(y[s], p[s]))
    assert belka_ap(y, p, prot, grp) == pytest.approx(np.mean(direct), abs=1e-12)
    assert len(cell_scores(y, p, prot, grp)) == 6
    micro = average_precision_score(y, p)
    assert abs(belka_ap(y, p, prot, grp) - micro) > 0.01


def test_metric_skips_empty_cells_and_refuses_bad_predictions():
    y = np.array([1, 0, 0, 1, 0])
    p = np.array([0.9, 0.1, 0.2, 0.8, 0.3])
    prot = np.array(["BRD4", "BRD4", "BRD4", "sEH", "sEH"])
    grp = np.array(["share"] * 5)
    assert set(cell_scores(y, p, prot, grp)) == {("BRD4", "share"), ("sEH", "share")}
    assert belka_ap(y, p, prot, grp) == 1.0
    for bad in (np.nan, np.inf, 1.01, -1e-9):
        q = p.copy()
        q[2] = bad
        with pytest.raises(SubmissionError, match="rows \\[2\\]"):
            belka_ap(y, q, prot, grp)


def test_metric_module_imports_no_torch():
    import subprocess

    code = (
        "import sys, molremote.tasks.belka.metric, molremote.tasks.belka.task; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_split_groups_share_only_when_all_blocks_seen():
    seen = np.array([True, True, False, True])
    bb = np.array([[0, 1, 3], [0, 2, 3], [2, 2, 2], [3, 3, 3]])
    assert split_groups(bb, seen).tolist() == ["share", "nonshare", "nonshare", "share"]


# ------------------------------------------------------------------------------------- demo and folds
@pytest.fixture(scope="module")
def demo():
    task = BelkaTask(exp_for(None, scheme="building_block"))
    task.load()
    return task


def test_demo_data_shape_and_rates(demo):
    assert demo.n_train() == 10_000 and demo.n_test() == 2_000
    assert (demo.train.labels >= 0).all()  # every training molecule has all 3 proteins
    rates = demo.train.labels.mean(axis=0)
    assert ((rates > 0.01) & (rates < 0.05)).all()
    rows_per_test_molecule = (demo.test.ids >= 0).sum(axis=1)
    assert rows_per_test_molecule.min() >= 1 and (rows_per_test_molecule < 3).any()
    groups = demo.test_split_groups()
    assert (groups == "share").sum() == 1000 and (groups == "nonshare").sum() == 1000


def test_building_block_folds_hold_out_building_block_1(demo):
    f = demo.fold_assignment()
    assert sorted(np.unique(f)) == [0, 1, 2]
    for k in range(3):
        tr, va = demo.split(k)
        assert not set(demo.train.bb[tr, 0]) & set(demo.train.bb[va, 0])
        assert (demo.valid_split_groups(va) == "nonshare").all()
    np.testing.assert_array_equal(f, demo.fold_assignment())  # deterministic for a seed


def test_random_folds_are_balanced_and_mostly_share():
    task = BelkaTask(exp_for(None, scheme="random", seed=3))
    task.load()
    counts = np.bincount(task.fold_assignment())
    assert counts.max() - counts.min() <= 1
    tr, va = task.split(1)
    groups = task.valid_split_groups(va)
    assert (groups == "share").mean() > 0.95


def test_baseline_is_the_positive_rate_per_cell(demo):
    tr, va = demo.split(0)
    groups = demo.valid_split_groups(va)
    want = np.mean([demo.train.labels[va, j][groups == g].mean() for j in range(3) for g in np.unique(groups)])
    assert demo.baseline_score(va) == pytest.approx(want)
    # a model that knows the labels scores 1, random scores land near the baseline
    labels = demo.train.labels[va].astype(float)
    assert demo.score(va, {"probs": labels}) == 1.0
    # a constant prediction ties every molecule: its AP is exactly the positive rate, the baseline
    assert demo.score(va, {"probs": np.full(labels.shape, 0.5)}) == pytest.approx(demo.baseline_score(va), rel=1e-12)
    # random predictions average near it (10 seeds: within 10%; AP of random scores sits a little above the rate)
    rand = [demo.score(va, {"probs": np.random.default_rng(i).random(labels.shape)}) for i in range(10)]
    assert np.mean(rand) == pytest.approx(demo.baseline_score(va), rel=0.1)


def test_masked_loss_ignores_absent_protein_rows(small):
    torch = pytest.importorskip("torch")
    from molremote.models import build_model

    root, _, _ = small
    exp = validate(
        {
            "id": 1,
            "slug": "t",
            "task": "belka",
            "data": {"root": str(root)},
            "model": {"name": "cnn1d", "embed_dim": 8, "channels": [8], "hidden": [8]},
        },
        file=None,
    )
    task = BelkaTask(exp)
    task.load()
    torch.manual_seed(0)
    model = build_model(exp, task.model_info()).eval()
    b = task.batch("train", np.arange(3), "cpu")
    assert b["tokens"].dtype == torch.int64 and b["mask"].tolist() == [[1, 1, 1], [1, 0, 1], [1, 1, 1]]
    base = task.loss(model, b)
    b2 = dict(b, y=b["y"].clone())
    b2["y"][1, 1] = 1.0  # the absent (molecule 1, HSA) cell: changing its target changes nothing
    assert task.loss(model, b2).item() == pytest.approx(base.item())
    b2["y"][1, 0] = 1 - b2["y"][1, 0]  # a present cell does
    assert task.loss(model, b2).item() != pytest.approx(base.item())
    logits = model(b["tokens"])
    manual = torch.nn.functional.binary_cross_entropy_with_logits(logits[b["mask"] > 0], b["y"][b["mask"] > 0])
    assert base.item() == pytest.approx(manual.item(), rel=1e-6)
    out = task.predict(model, task.batch("test", np.arange(3), "cpu"))
    assert out["probs"].shape == (3, 3) and ((out["probs"] > 0) & (out["probs"] < 1)).all()
