"""MoA's files and the torch-free side: submission format checked, fold/OOF scores = the metric on the files,
test predictions averaged into the submission."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from molremote.errors import SubmissionError
from molremote.results.submission_files import check_submission, write_submission_atomic
from molremote.tasks import task_results
from molremote.tasks.base import TestMember as Member
from molremote.tasks.moa.metric import mean_columnwise_log_loss
from molremote.tasks.moa.results import submission_spec
from molremote.tasks.moa.task import MoaTask

from .conftest import DEMO, moa_exp


@pytest.fixture(scope="module")
def task():
    t = MoaTask(moa_exp())
    t.load()
    return t


def test_submission_has_the_sample_header_and_passes_the_format_check(task, tmp_path):
    rng = np.random.default_rng(0)
    p = rng.random((task.n_test(), len(task.target_cols)))
    path = task.write_submission(tmp_path / "submission.csv", {"p": p})
    sample = pd.read_csv(DEMO / "sample_submission.csv")
    sub = pd.read_csv(path)
    assert list(sub.columns) == list(sample.columns)
    check_submission(path, submission_spec(list(sample.columns[1:])), expected_ids=sample["sig_id"].to_numpy())
    ctl = task.test.control
    assert (sub.to_numpy()[ctl, 1:] == 0).all()
    np.testing.assert_allclose(sub.to_numpy()[~ctl, 1:].astype(float), p[~ctl])
    assert task_results("moa").accepts_header(list(sub.columns))
    assert not task_results("belka").accepts_header(list(sub.columns))


def test_out_of_range_or_misnamed_submissions_are_refused(task, tmp_path):
    cols = list(pd.read_csv(DEMO / "sample_submission.csv", nrows=0).columns[1:])
    spec = submission_spec(cols)
    bad = {"sig_id": task.test.sig_id, **{c: np.full(task.n_test(), 1.5) for c in cols}}
    with pytest.raises(SubmissionError, match="1.5"):
        write_submission_atomic(bad, tmp_path / "s.csv", spec=spec)
    swapped = {"sig_id": task.test.sig_id, **{c: np.zeros(task.n_test()) for c in reversed(cols)}}
    with pytest.raises(SubmissionError, match="wrong order"):
        write_submission_atomic(swapped, tmp_path / "s.csv", spec=spec)
    assert not (tmp_path / "s.csv").exists()


def test_fold_and_oof_scores_and_the_averaged_test_submission(task, tmp_path):
    res = task_results("moa")
    rng = np.random.default_rng(1)
    f = task.fold_assignment()
    valids, tests, preds = [], [], {}
    for k in (0, 1):
        idx = np.flatnonzero(f == k)
        preds[k] = rng.random((len(idx), len(task.target_cols))) * 0.2
        d = tmp_path / f"fold{k}"
        valids.append(task.write_predictions(d, "valid", idx, {"p": preds[k]}))
        tp = rng.random((task.n_test(), len(task.target_cols)))
        tests.append((task.write_predictions(d, "test", np.arange(task.n_test()), {"p": tp}), tp))
        score, rows = res.fold_score(valids[-1])
        assert rows == len(idx) and score == pytest.approx(mean_columnwise_log_loss(task.y[idx], preds[k]), abs=1e-12)
    both = np.concatenate([np.flatnonzero(f == 0), np.flatnonzero(f == 1)])
    assert res.oof_score(valids) == pytest.approx(
        mean_columnwise_log_loss(task.y[both], np.concatenate([preds[0], preds[1]])), abs=1e-12
    )
    oof = res.oof(valids)
    assert list(oof.ids) == sorted(task.train.sig_id[both]) and oof.y.shape == (len(both), 14)
    sub, spec, notes = res.test_submission([Member(f"k{i}", p) for i, (p, _) in enumerate(tests)])
    assert spec.value_cols == tuple(task.target_cols) and notes["method"] == "mean"
    want = (tests[0][1] + tests[1][1]) / 2
    want[task.test.control] = 0
    np.testing.assert_array_equal(sub.ids, task.test.sig_id)
    np.testing.assert_allclose(sub.values, want, atol=1e-12)


def test_the_torch_free_side_and_the_data_modules_never_import_torch():
    import subprocess
    import sys

    code = (
        "import sys; from molremote.tasks import task_results; task_results('moa'); "
        "import molremote.tasks.moa.task, molremote.tasks.moa.preprocess, molremote.tasks.moa.folds; "
        "print('torch' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert r.stdout.strip() == "False", r.stderr
