"""molremote.results.kaggle_submit: parseable submission descriptions, joining Kaggle's list back to local
records."""

from __future__ import annotations

import pytest

from molremote.errors import SubmissionError
from molremote.results.kaggle_submit import (
    competition_for_task,
    describe_ensemble,
    describe_experiment,
    join_scores,
    parse_description,
    short_commit,
)


def test_descriptions_round_trip():
    d = describe_experiment(620, "04db72c4bd92", "c0ffee1", 0.28513)
    assert d == "molremote e0620 h04db72c4 cc0ffee1 cv=0.285130"
    p = parse_description(d + " tried a smaller lr")
    assert p == {
        "kind": "experiment",
        "experiments": [620],
        "hash": "04db72c4",
        "commit": "c0ffee1",
        "cv": pytest.approx(0.28513),
        "weights": None,
        "files": 0,
    }
    e = describe_ensemble([620, 21], 2, [0.5, 0.25, 0.125, 0.125], "e188cfec0000", "c0ffee1-dirty", None)
    assert e == "molremote ens e0620+e0021 files=2 w=0.5,0.25,0.125,0.125 he188cfec cc0ffee1-dirty cv=na"
    p = parse_description(e)
    assert (p["kind"], p["experiments"], p["files"], p["commit"], p["cv"]) == (
        "ensemble",
        [620, 21],
        2,
        "c0ffee1-dirty",
        None,
    )
    assert p["weights"] == [0.5, 0.25, 0.125, 0.125]
    assert parse_description("my manual try e0620") is None and parse_description(None) is None


def test_short_commit():
    assert short_commit([{"commit": "abcdef0123", "dirty": False}] * 2) == "abcdef0"
    assert short_commit([{"commit": "abcdef0123"}, {"commit": "1234567890", "dirty": True}]) == "abcdef0+1234567-dirty"
    assert short_commit([None, {}]) == "unknown"


def test_competition_for_task():
    assert competition_for_task("belka") == "leash-BELKA"
    with pytest.raises(SubmissionError, match="task 'text2mol' has no Kaggle competition"):
        competition_for_task("text2mol")
    with pytest.raises(SubmissionError, match="unknown task 'nope'"):
        competition_for_task("nope")


def test_join_by_ref_then_by_hash(tmp_path):
    subs = [
        {"ref": 3, "description": "molremote e0007 h1111aaaa cabcdef0 cv=0.5", "public_score": 0.4},
        {"ref": 2, "description": "molremote e0007 h1111aaaa cabcdef0 cv=0.5", "public_score": 0.3},
        {"ref": 1, "description": "by hand", "public_score": 0.1},
    ]
    rec = {
        "kind": "evaluation",
        "path": tmp_path / "evaluation.json",
        "record": {
            "config_hash": "1111aaaa2222",
            "submission_sha256": "new",
            "kaggle_submissions": [{"ref": 2, "sha256": "old"}],
        },
    }
    rows = {r["ref"]: r for r in join_scores(subs, [rec])}
    assert rows[2]["record"] == str(rec["path"]) and rows[2]["sha256"] == "old" and rows[2]["file_matches"] is False
    assert rows[3]["record"] == str(rec["path"]) and rows[3]["sha256"] is None  # found by its config hash
    assert rows[1]["record"] is None and rows[1]["molremote"] is False
    assert [r["ref"] for r in join_scores(subs, [rec], experiment=7)] == [3, 2]
    assert join_scores(subs, [rec], experiment=8) == []
