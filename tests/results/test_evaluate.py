"""molremote.results.evaluate: fold and out-of-fold metrics from run folders' predictions, fold-averaged submissions.
Prediction files are written by the real tasks (demo data, torch-free write_predictions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from molremote.errors import DataError, SubmissionError
from molremote.experiments import validate
from molremote.results.evaluate import evaluate_runs, read_evaluation
from molremote.results.submission_files import check_submission
from molremote.tasks import get_task
from molremote.tasks.belka.results import SUBMISSION as BELKA
from molremote.tasks.text2mol.results import submission_spec as text2mol_spec


def make_task(name: str, model: str, n_folds: int = 3):
    exp = validate(
        {
            "id": 7,
            "slug": f"{name}_eval",
            "task": {"name": name},
            "model": {"name": model},
            "folds": {"n_folds": n_folds},
        },
        file=None,
    )
    task = get_task(exp)
    task.load()
    return exp, task


def write_run(root: Path, exp, fold: int, status: str = "complete") -> Path:
    run = root / "runs" / exp.name / f"fold{fold}-{exp.config_hash}"
    (run / "predictions").mkdir(parents=True)
    (run / "manifest.json").write_text(
        json.dumps(
            {
                "experiment": exp.id,
                "name": exp.name,
                "fold": fold,
                "config_hash": exp.config_hash,
                "run_uid": f"u{fold}",
                "status": status,
                "code": {"commit": "c0ffee", "dirty": False},
            }
        )
    )
    (run / "config.json").write_text(json.dumps(exp.to_json()))
    return run


@pytest.fixture(scope="module")
def belka(tmp_path_factory):
    exp, task = make_task("belka", "cnn1d")
    root = tmp_path_factory.mktemp("belka")
    rng = np.random.default_rng(0)
    runs, scores = [], {}
    for k in range(3):
        run = write_run(root, exp, k)
        _, valid_idx = task.split(k)
        out = {"probs": rng.random((len(valid_idx), 3))}
        task.write_predictions(run / "predictions", "valid", valid_idx, out)
        scores[k] = task.score(valid_idx, out)
        test_out = {"probs": rng.random((task.n_test(), 3))}
        task.write_predictions(run / "predictions", "test", np.arange(task.n_test()), test_out)
        runs.append(run)
    return exp, task, root, runs, scores


def test_belka_scores_and_fold_averaged_submission(belka, tmp_path: Path):
    exp, task, root, runs, scores = belka
    ev = evaluate_runs(runs[::-1], out_dir=tmp_path / "eval")
    assert ev.task == "belka" and ev.metric == "belka_ap" and ev.experiment == 7
    assert ev.fold_scores == pytest.approx(scores, abs=1e-12)  # same figure as the trainer's task.score
    assert ev.mean_fold_score == pytest.approx(np.mean(list(scores.values())))
    valid = pd.concat([pd.read_parquet(r / "predictions" / "valid.parquet") for r in runs])
    assert sum(ev.n_valid.values()) == len(valid)
    cells = [
        average_precision_score(g["binds_true"], g["binds"]) for _, g in valid.groupby(["protein_name", "split_group"])
    ]
    assert ev.oof_score == pytest.approx(np.mean(cells), abs=1e-12)
    # submission: test predictions averaged over folds by id, BELKA format
    test = pd.concat([pd.read_parquet(r / "predictions" / "test.parquet") for r in runs])
    ref = test.groupby("id")["binds"].mean()
    sub = check_submission(ev.submission, BELKA, expected_ids=ref.index.to_numpy())
    np.testing.assert_allclose(sub.values[:, 0], ref.loc[sub.ids].to_numpy(), atol=1e-15)
    demo_ids = pd.read_parquet(task.data_dir() / "test.parquet", columns=["id"])["id"]
    assert sorted(sub.ids.tolist()) == sorted(demo_ids.tolist())
    rec = read_evaluation(tmp_path / "eval")
    assert rec["oof_score"] == pytest.approx(ev.oof_score) and len(rec["runs"]) == 3
    assert rec["runs"][0]["run_key"] == f"{exp.name}/fold0-{exp.config_hash}"
    assert len(rec["runs"][0]["test_predictions"]["sha256"]) == 64 and len(rec["submission_sha256"]) == 64
    with pytest.raises(SubmissionError, match="submission.csv: already exists"):
        evaluate_runs(runs, out_dir=tmp_path / "eval")
    single = evaluate_runs(runs[:1])
    assert single.oof_score == pytest.approx(scores[0]) and single.submission is None


def test_bad_run_sets_refused(belka, tmp_path: Path):
    exp, task, root, runs, scores = belka
    with pytest.raises(DataError, match=r"two runs of fold 1: .*fold1-.* and .*fold1-"):
        evaluate_runs([runs[1], runs[1]])
    other = validate({"id": 8, "slug": "other", "task": {"name": "belka"}, "model": {"name": "cnn1d"}}, file=None)
    o = write_run(tmp_path, other, 1)
    with pytest.raises(DataError, match=r"experiment 8, but .* is experiment 7"):
        evaluate_runs([runs[0], o])
    inc = write_run(tmp_path / "inc", exp, 1, status="incomplete")
    with pytest.raises(DataError, match=r"run status is 'incomplete'"):
        evaluate_runs([runs[0], inc])
    with pytest.raises(DataError, match=r"predictions/valid.parquet: no valid predictions in run .*fold1-"):
        evaluate_runs([runs[0], inc], allow_incomplete=True)
    with pytest.raises(DataError, match=r"not a run folder"):
        evaluate_runs([tmp_path])


def test_overlapping_folds_refused(belka, tmp_path: Path):
    exp, task, root, runs, scores = belka
    dup = write_run(tmp_path, exp, 5)
    for f in ("valid.parquet", "test.parquet"):
        (dup / "predictions" / f).write_bytes((runs[0] / "predictions" / f).read_bytes())
    with pytest.raises(DataError, match=r"validation row id\(s\) occur in more than one fold"):
        evaluate_runs([runs[0], dup])


def test_text2mol_fold_scores_and_row_zscored_submission(tmp_path: Path):
    from molremote.tasks.text2mol.data import cosine_similarity

    exp, task = make_task("text2mol", "gcn_text", n_folds=2)
    rng = np.random.default_rng(1)
    runs, scores, sims = [], {}, []
    n_test = task.n_test()
    for k in range(2):
        run = write_run(tmp_path, exp, k)
        _, valid_idx = task.split(k)
        t = rng.normal(size=(len(valid_idx), 8))
        out = {"text_emb": t, "mol_emb": t + rng.normal(scale=2.0, size=t.shape)}  # better than chance
        task.write_predictions(run / "predictions", "valid", valid_idx, out)
        scores[k] = task.score(valid_idx, out)
        te = {"text_emb": rng.normal(size=(n_test, 8)), "mol_emb": rng.normal(size=(n_test, 8)) * (k + 1)}
        task.write_predictions(run / "predictions", "test", np.arange(n_test), te)
        s = cosine_similarity(te["text_emb"].astype(np.float32), te["mol_emb"].astype(np.float32))
        sims.append((s - s.mean(axis=1, keepdims=True)) / s.std(axis=1, keepdims=True))
        runs.append(run)
    ev = evaluate_runs(runs, out_dir=tmp_path / "eval")
    assert ev.metric == "lrap" and ev.oof_score is None
    assert ev.fold_scores == pytest.approx(scores, abs=1e-9)
    sub = check_submission(ev.submission, text2mol_spec(n_test), expected_ids=np.arange(n_test))
    np.testing.assert_allclose(sub.values, (sims[0] + sims[1]) / 2, atol=1e-5)
    assert ev.notes["normalise"] == "zscore" and ev.notes["axis"] == "row"


def test_import_is_torch_free():
    code = "import sys, molremote.results.evaluate; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
