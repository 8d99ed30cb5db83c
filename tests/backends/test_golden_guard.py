"""Golden files cannot be rewritten in CI: MOLREMOTE_UPDATE_GOLDEN=1 under CI=true fails instead of writing."""

import pytest

from .conftest import check_golden


def test_golden_update_is_refused_under_ci(tmp_path, monkeypatch):
    import tests.backends.conftest as conftest

    golden = tmp_path / "golden"
    golden.mkdir()
    (golden / "x.txt").write_text("recorded\n")
    monkeypatch.setattr(conftest, "__file__", str(tmp_path / "conftest.py"))  # golden/ next to it
    monkeypatch.setenv("MOLREMOTE_UPDATE_GOLDEN", "1")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="refused under CI=true"):
        check_golden("x.txt", "changed\n")
    assert (golden / "x.txt").read_text() == "recorded\n"
    monkeypatch.delenv("CI")  # locally the update writes, and the check then passes
    check_golden("x.txt", "changed\n")
    assert (golden / "x.txt").read_text() == "changed\n"
    monkeypatch.delenv("MOLREMOTE_UPDATE_GOLDEN")
    with pytest.raises(AssertionError, match="differs"):
        check_golden("x.txt", "other\n")
