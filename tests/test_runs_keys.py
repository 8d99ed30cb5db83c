"""molremote.runs as the one owner of run keys: key of a folder, key under the runs folder, parsing, finding
the run folder that holds a file, reading a run folder for evaluation."""

from __future__ import annotations

import json

import pytest

from molremote.errors import DataError
from molremote.runs import find_run_dir, key_of_dir, key_under, load_run, parse_key


def test_keys_of_folders(tmp_path):
    run = tmp_path / "runs" / "0620_belka_cnn" / "fold1-abc123"
    assert key_of_dir(run) == "0620_belka_cnn/fold1-abc123"
    assert key_under(run, tmp_path / "runs") == "0620_belka_cnn/fold1-abc123"
    assert key_under(tmp_path / "elsewhere" / "x" / "fold1-abc123", tmp_path / "runs") is None
    assert key_under(tmp_path / "runs", tmp_path / "runs") is None
    assert parse_key("0620_belka_cnn/fold12-abc123") == ("0620_belka_cnn", 12, "abc123")
    assert parse_key("fold0-h") == ("", 0, "h")
    assert parse_key("0620_belka_cnn/evaluation-abc") is None


def test_find_and_load_a_run_folder(tmp_path):
    run = tmp_path / "0001_x" / "fold0-h0"
    (run / "predictions").mkdir(parents=True)
    (run / "predictions" / "valid.parquet").write_bytes(b"")
    assert find_run_dir(run / "predictions" / "valid.parquet") is None  # no manifest yet
    (run / "manifest.json").write_text(json.dumps({"fold": 0, "status": "complete"}))
    assert find_run_dir(run / "predictions" / "valid.parquet") == run.resolve()
    with pytest.raises(DataError, match="has no 'task'"):
        load_run(run)
    (run / "config.json").write_text(json.dumps({"task": {"name": "belka"}}))
    info = load_run(run)
    assert (info.key, info.fold, info.task) == ("0001_x/fold0-h0", 0, "belka")
    assert info.prediction("valid") == run / "predictions" / "valid.parquet"
    with pytest.raises(DataError, match=r"no test predictions in run 0001_x/fold0-h0 \(status 'complete'\)"):
        info.prediction("test")
    (run / "manifest.json").write_text(json.dumps({"fold": "0"}))
    with pytest.raises(DataError, match="field 'fold' is '0', expected an integer"):
        load_run(run)
