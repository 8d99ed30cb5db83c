"""molremote.results.averaging: id alignment, methods, weights, fitted weights, heatmap, records."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, log_loss

from molremote.errors import SubmissionError
from molremote.results.averaging import (
    average,
    build_ensemble,
    combine,
    correlation_heatmap,
    fit_weights,
    heatmap_size,
    normalise_weights,
    read_record,
    rebuild,
    write_record,
)
from molremote.results.submission_files import check_submission
from molremote.tasks.belka.results import SUBMISSION as BELKA
from molremote.tasks.text2mol.results import submission_spec as text2mol_spec

N = 500


def make_members(tmp: Path, k: int = 3, n: int = N, seed: int = 0, first_id: int = 1000, shuffle: bool = True):
    """k BELKA-like CSVs of the same ids, each in its own row order; returns (paths, ids, values[k, n])."""
    rng = np.random.default_rng(seed)
    ids = np.arange(first_id, first_id + n)
    vals = rng.random((k, n))
    paths = []
    for i in range(k):
        perm = rng.permutation(n) if shuffle else np.arange(n)
        p = tmp / f"m{i}.csv"
        pd.DataFrame({"id": ids[perm], "binds": vals[i, perm]}).to_csv(p, index=False)
        paths.append(p)
    return paths, ids, vals


def test_rows_aligned_by_id_not_position(tmp_path: Path):
    paths, ids, vals = make_members(tmp_path)
    out = average(paths, spec=BELKA)
    assert out.ids.tolist() == ids.tolist()
    np.testing.assert_allclose(out.values[:, 0], vals.mean(axis=0), rtol=0, atol=1e-15)
    # same members, rows in other orders, members in another order: same result
    sorted_dir = tmp_path / "sorted"
    sorted_dir.mkdir()
    paths2, _, _ = make_members(sorted_dir, shuffle=False)
    out2 = average(paths2[::-1], spec=BELKA)
    np.testing.assert_allclose(out2.values, out.values, rtol=0, atol=1e-15)
    # a positional (wrong) average differs: the test would catch alignment by position
    positional = np.mean([pd.read_csv(p)["binds"].to_numpy() for p in paths], axis=0)
    assert not np.allclose(positional, out.values[:, 0])
    # order="first" keeps the first member's row order
    first = average(paths, order="first")
    assert first.ids.tolist() == pd.read_csv(paths[0])["id"].tolist()


@pytest.mark.parametrize("kind", ["sparse", "string"])
def test_alignment_for_sparse_and_string_ids(tmp_path: Path, kind: str):
    rng = np.random.default_rng(1)
    ids = (
        rng.choice(10**12, size=200, replace=False)
        if kind == "sparse"
        else np.array([f"s_{i:04d}" for i in range(200)])
    )
    vals = rng.random((2, 200, 2))
    members = []
    for i in range(2):
        perm = rng.permutation(200)
        members.append((f"m{i}", pd.DataFrame({"sig_id": ids[perm], "a": vals[i, perm, 0], "b": vals[i, perm, 1]})))
    out = average(members, weights=[3, 1])
    order = np.argsort(ids)
    assert out.ids.tolist() == ids[order].tolist()
    np.testing.assert_allclose(out.values, (0.75 * vals[0] + 0.25 * vals[1])[order], atol=1e-15)


def test_mismatched_ids_columns_and_duplicates_refused(tmp_path: Path):
    paths, ids, vals = make_members(tmp_path, k=2)
    df = pd.read_csv(paths[1])
    bad = tmp_path / "fewer.csv"
    df[df["id"] != 1003].to_csv(bad, index=False)
    with pytest.raises(SubmissionError) as e:
        average([paths[0], bad])
    assert str(bad) in str(e.value) and "1 id(s) of" in str(e.value) and "missing: 1003" in str(e.value)
    other = tmp_path / "other.csv"
    df.assign(id=df["id"] + 1).to_csv(other, index=False)
    with pytest.raises(SubmissionError, match=r"other.csv: id set differs.*1 id\(s\) not in .*: 1500"):
        average([paths[0], other])
    cols = tmp_path / "cols.csv"
    df.rename(columns={"binds": "score"}).to_csv(cols, index=False)
    with pytest.raises(SubmissionError, match=r"cols.csv: columns differ from .*m0.csv: missing binds; extra score"):
        average([paths[0], cols])
    with pytest.raises(SubmissionError, match=r"cols.csv: wrong header"):
        average([paths[0], cols], spec=BELKA)
    dup = tmp_path / "dup.csv"
    pd.concat([df, df.iloc[:2]]).to_csv(dup, index=False)
    with pytest.raises(SubmissionError, match=r"dup.csv: column 'id' has 2 duplicated id\(s\)"):
        average([dup, paths[0]])
    rng_bad = tmp_path / "range.csv"
    df.assign(binds=df["binds"] + 1).to_csv(rng_bad, index=False)
    with pytest.raises(SubmissionError, match=r"range.csv: column 'binds' has \d+ value\(s\) outside \[0.0, 1.0\]"):
        average([paths[0], rng_bad], spec=BELKA)


def test_columns_matched_by_name():
    a = ("a", pd.DataFrame({"ID": [0, 1], "0": [1.0, 2.0], "1": [3.0, 4.0]}))
    b = ("b", pd.DataFrame({"ID": [1, 0], "1": [8.0, 7.0], "0": [6.0, 5.0]}))
    out = average([a, b])
    assert out.columns == ("0", "1")
    np.testing.assert_allclose(out.values, [[3.0, 5.0], [4.0, 6.0]])


def test_weights_normalised_and_checked():
    np.testing.assert_allclose(normalise_weights([2, 1, 1], 3), [0.5, 0.25, 0.25])
    np.testing.assert_allclose(normalise_weights(None, 4), [0.25] * 4)
    x = [np.array([0.2, 0.4]), np.array([0.6, 0.0]), np.array([1.0, 1.0])]
    np.testing.assert_allclose(combine(x, [2, 1, 1]), combine(x, [0.5, 0.25, 0.25]))
    np.testing.assert_allclose(combine(x, [2, 1, 1]), [0.5, 0.45])
    for bad, msg in [([1, 2], "2 weight"), ([1, -1, 1], ">= 0"), ([0, 0, 0], "sum to 0"), ([1, np.nan, 1], "finite")]:
        with pytest.raises(SubmissionError, match=msg):
            normalise_weights(bad, 3)


def test_rank_method_equals_scipy_rankdata(tmp_path: Path):
    paths, ids, vals = make_members(tmp_path, k=3)
    vals[1, :50] = 0.5  # ties must get their average rank
    for i, p in enumerate(paths):
        df = pd.read_csv(p)
        df["binds"] = vals[i, df["id"].to_numpy() - 1000]
        df.to_csv(p, index=False)
    w = np.array([0.5, 0.3, 0.2])
    out = average(paths, w, method="rank", spec=BELKA)
    ref = sum(wi * rankdata(v, method="average") / N for wi, v in zip(w, vals))
    np.testing.assert_allclose(out.values[:, 0], ref, rtol=1e-12)
    assert 0 < out.values.min() and out.values.max() <= 1


def test_geo_and_logit_methods():
    x = [np.array([0.25, 0.9]), np.array([1.0, 0.1])]
    np.testing.assert_allclose(combine(x, method="geo"), [0.5, 0.3], rtol=1e-6)
    np.testing.assert_allclose(combine(x, [1, 0], method="logit"), x[0], rtol=1e-9)
    np.testing.assert_allclose(combine([np.array([0.8]), np.array([0.2])], method="logit"), [0.5])
    with pytest.raises(SubmissionError, match="needs values in"):
        combine([np.array([-1.0])], method="geo")
    with pytest.raises(SubmissionError, match="cannot follow 'zscore'"):
        combine(x, method="logit", normalise="zscore")
    with pytest.raises(SubmissionError, match="unknown ensemble method 'median'"):
        combine(x, method="median")


def test_text2mol_row_zscore_makes_scales_comparable():
    rng = np.random.default_rng(2)
    sims = rng.uniform(-0.2, 0.9, size=(6, 6))
    a = rng.uniform(0.05, 0.3, size=(6, 1))  # per-row scale and shift, as another temperature would give
    b = rng.uniform(0.5, 0.7, size=(6, 1))
    squeezed = a * sims + b
    z = combine([sims], normalise="zscore", axis="row")
    np.testing.assert_allclose(combine([squeezed], normalise="zscore", axis="row"), z, atol=1e-12)
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-12)
    # raw averaging lets the wider-spread member dominate; z-scored averaging weighs both equally
    other = rng.uniform(-1, 1, size=(6, 6))
    both = combine([squeezed, other], normalise="zscore", axis="row")
    np.testing.assert_allclose(both, 0.5 * z + 0.5 * combine([other], normalise="zscore", axis="row"), atol=1e-12)


def test_fit_weights_beats_uniform_on_oof():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    good = np.clip(0.8 * y + 0.1 + 0.1 * rng.standard_normal(2000), 0.01, 0.99)
    okish = np.clip(0.4 * y + 0.3 + 0.2 * rng.standard_normal(2000), 0.01, 0.99)
    noise = rng.uniform(0.01, 0.99, 2000)
    oof = [noise, good, okish]
    fit = fit_weights(oof, y, log_loss, greater_is_better=False)
    assert fit.weights.min() >= 0 and abs(fit.weights.sum() - 1) < 1e-9
    assert fit.score < fit.uniform_score - 0.05  # clearly better than uniform on a smooth metric
    assert fit.weights[1] > 0.6 and fit.weights[0] < 0.05
    assert fit.score == pytest.approx(log_loss(y, combine(oof, fit.weights)))
    # a ranking metric (piecewise constant): never worse than uniform
    fit_ap = fit_weights(oof, y, average_precision_score, greater_is_better=True)
    assert fit_ap.score >= fit_ap.uniform_score
    assert fit_ap.score == pytest.approx(average_precision_score(y, combine(oof, fit_ap.weights)))
    np.testing.assert_allclose(np.asarray(fit_ap), fit_ap.weights)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_correlation_heatmap_png(tmp_path: Path):
    paths, ids, vals = make_members(tmp_path, k=4)
    out = tmp_path / "report" / "corr.png"
    corr = correlation_heatmap(paths, out)
    assert png_size(out) == heatmap_size(4)
    np.testing.assert_allclose(corr.values, np.corrcoef(vals), atol=1e-12)
    assert list(corr.columns) == ["m0", "m1", "m2", "m3"]
    sp = correlation_heatmap(paths, tmp_path / "sp.png", method="spearman", dpi=50)
    assert png_size(tmp_path / "sp.png") == heatmap_size(4, dpi=50)
    assert sp.values[0, 1] == pytest.approx(np.corrcoef(rankdata(vals[0]), rankdata(vals[1]))[0, 1])


def fake_run(root: Path, exp: str, fold: int, h: str) -> Path:
    run = root / "runs" / exp / f"fold{fold}-{h}"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(
        json.dumps(
            {
                "experiment": int(exp[:4]),
                "name": exp,
                "fold": fold,
                "config_hash": h,
                "run_uid": f"uid{fold}",
                "status": "complete",
                "code": {"commit": "abc123", "dirty": False, "bundle_hash": "b1"},
            }
        )
    )
    return run


def test_record_roundtrip_and_rebuild(tmp_path: Path, monkeypatch):
    # the record names the commit of the code that built it: a project in a git repo with a known commit
    proj = tmp_path / "proj"
    (proj / "experiments").mkdir(parents=True)
    git = ["git", "-C", str(proj), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "code"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    monkeypatch.setenv("MOLREMOTE_PROJECT", str(proj))
    monkeypatch.delenv("MOLREMOTE_BUNDLE_INFO", raising=False)
    paths, ids, vals = make_members(tmp_path, k=2)
    members = []
    for i, p in enumerate(paths):
        run = fake_run(tmp_path, "0620_belka_cnn", i, f"h{i}")
        dest = run / "submission.csv"
        p.rename(dest)
        members.append(dest)
    rec_path = write_record(tmp_path / "ens", members, [3, 1], "mean", {"oof_ap": 0.25}, task="belka")
    rec = read_record(rec_path.parent)
    assert rec["weights"] == [0.75, 0.25] and rec["method"] == "mean" and rec["metrics"] == {"oof_ap": 0.25}
    m0 = rec["members"][0]
    assert m0["run_key"] == "0620_belka_cnn/fold0-h0" and m0["name"] == "0620_belka_cnn/fold0-h0"
    assert m0["experiment"] == 620 and m0["fold"] == 0 and m0["config_hash"] == "h0" and m0["run_uid"] == "uid0"
    assert m0["experiment_name"] == "0620_belka_cnn"
    assert m0["code"]["commit"] == "abc123" and len(m0["sha256"]) == 64 and m0["weight"] == 0.75
    assert rec["code"] == {"commit": sha, "dirty": False, "bundle_hash": None}
    rebuilt = rebuild(rec_path, spec=BELKA)
    np.testing.assert_allclose(rebuilt.values, average(members, [3, 1]).values)
    df = pd.read_csv(members[1])
    df.loc[0, "binds"] = 0.123
    df.to_csv(members[1], index=False)
    with pytest.raises(SubmissionError, match=r"fold1-h1/submission.csv: member .* changed since"):
        rebuild(rec_path)
    # in-memory members are recorded by content hash
    rec2 = read_record(write_record(tmp_path / "mem", [("a", pd.read_csv(members[0]))], None, "mean", None))
    assert len(rec2["members"][0]["content_sha256"]) == 64 and rec2["members"][0]["path"] is None
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "ensemble.json").write_text('{"method": "mean"}')
    with pytest.raises(SubmissionError, match=r"broken/ensemble.json: ensemble record has no 'weights'"):
        read_record(tmp_path / "broken")


def test_build_ensemble_writes_checked_submission_record_and_heatmap(tmp_path: Path):
    rng = np.random.default_rng(4)
    n = 5
    members = [
        (f"m{i}", pd.DataFrame({"ID": np.arange(n), **{str(j): rng.normal(size=n) * (i + 1) for j in range(n)}}))
        for i in range(3)
    ]
    res = build_ensemble(members, tmp_path / "ens", task="text2mol", spec=text2mol_spec(n), metrics={"lrap": 0.9})
    p = check_submission(res.submission, text2mol_spec(n), expected_ids=np.arange(n))
    ref = combine([m[1].iloc[:, 1:].to_numpy() for m in members], normalise="zscore", axis="row")
    np.testing.assert_allclose(p.values, ref, atol=1e-12)
    rec = read_record(res.record)
    assert rec["normalise"] == "zscore" and rec["axis"] == "row" and rec["task"] == "text2mol"
    assert rec["submission"]["sha256"] and res.heatmap.exists() and rec["correlation"]["m0"]["m0"] == 1.0
    with pytest.raises(SubmissionError, match="already exists"):
        build_ensemble(members, tmp_path / "ens", task="text2mol")


def test_import_does_not_load_torch_or_matplotlib():
    code = (
        "import sys, molremote.results.averaging, molremote.results.submission_files; "
        "bad = [m for m in ('torch', 'matplotlib') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
