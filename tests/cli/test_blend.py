"""`molremote evaluate -e <blend>` (scores, submission, `--submit` through the real Kaggle client against the
loopback server), `ls` / `show` of blends, and `train` / `remote` refusing a blend. Member runs are synthetic run
folders of MoA experiments whose predictions the real task wrote (tests/results/test_blending.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from molremote.cli import app
from molremote.errors import ExperimentError, UsageError
from molremote.results.submission_files import sha256_file
from tests.results.test_blending import moa_project  # noqa: F401 - the fixture this module's tests take

runner = CliRunner()


def cli(*args: str, ok: bool = True):
    res = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
    return res


@pytest.fixture
def kaggle(moa_project, monkeypatch):  # noqa: F811 - moa_project is the imported fixture
    from molremote.backends.kaggle_api import ENDPOINT_ENV
    from tests.servers.kaggle_server import KaggleServer

    monkeypatch.setenv("HOME", str(moa_project[0] / "home"))
    with KaggleServer() as server:
        for v in ("KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR", "KAGGLE_API_ENVIRONMENT", "MOLREMOTE_KAGGLE_ACCOUNT"):
            monkeypatch.delenv(v, raising=False)
        monkeypatch.setenv("KAGGLE_USERNAME", server.username)
        monkeypatch.setenv("KAGGLE_KEY", server.key)
        monkeypatch.setenv(ENDPOINT_ENV, server.url)
        yield server


@pytest.mark.integration
def test_evaluate_submit_a_nested_blend_with_its_leaf_runs_on_record(moa_project, kaggle):  # noqa: F811
    project, reg = moa_project
    out = json.loads(cli("evaluate", "-e", "21", "--submit", "-m", "blend try", "--json").stdout)
    [sub] = kaggle.submissions
    h = reg.blend(21).config_hash
    assert sub.competition == "lish-moa" and sub.content == Path(out["submission"]).read_bytes()
    assert sub.description == f"molremote e0021 h{h[:8]} cc0ffee1 cv={out['oof_score']:.6f} blend try"
    rec = json.loads(Path(out["record"]).read_text())
    [entry] = rec["kaggle_submissions"]
    assert entry["ref"] == sub.ref and entry["sha256"] == sha256_file(Path(out["submission"]))
    keys = {k for leaf in rec["leaf_weights"] for k in leaf["run_keys"]}
    assert keys == {r["run_key"] for r in rec["runs"]} and len(keys) == 6  # 3 leaf experiments x 2 folds
    assert all((project / "runs" / k / "manifest.json").is_file() for k in keys)
    assert {d["experiment"]: round(d["weight"], 6) for d in rec["leaf_weights"]} == {10: 0.125, 11: 0.375, 12: 0.5}
    # `scores -e <blend>` finds the blend's competition and joins the submission back to its record by ref
    sc = json.loads(cli("scores", "-e", "21", "--json").stdout)
    [row] = sc["submissions"]
    assert sc["competition"] == "lish-moa" and row["experiments"] == [21] and row["ref"] == sub.ref
    assert Path(row["record"]) == Path(out["record"]) and row["file_matches"] is True


def test_ls_and_show_mark_blends(moa_project):  # noqa: F811
    rows = {r["id"]: r for r in json.loads(cli("ls", "--json").stdout)}
    assert rows[20]["kind"] == "blend" and rows[20]["model"] == "blend" and rows[20]["parent"] == "10+11"
    assert rows[10]["kind"] == "experiment" and rows[20]["score"] is None
    cli("evaluate", "-e", "20")
    rows = {r["id"]: r for r in json.loads(cli("ls", "--json").stdout)}
    assert rows[20]["status"] == "evaluated" and rows[20]["metric"] == "logloss" and rows[20]["score"] > 0
    text = cli("ls").stdout
    assert any(line.split()[:4] == ["0020", "moa", "blend", "10+11"] for line in text.splitlines())
    shown = cli("show", "21").stdout
    assert "blend" in shown and "leaf weights  10: 0.125, 11: 0.375, 12: 0.5" in shown
    assert json.loads(cli("show", "22", "--json").stdout)["members"][0]["weight"] == "auto"


def test_train_remote_and_unsupported_options_refuse_a_blend(moa_project):  # noqa: F811
    for args in (("train", "-e", "21"), ("remote", "-e", "21", "--slurm", "--dry-run")):
        res = cli(*args, ok=False)
        assert isinstance(res.exception, ExperimentError) and res.exception.exit_code == 2, args
        assert "experiment 21 is a blend of experiments 10, 11, 12: it has no model" in str(res.exception)
    res = cli("evaluate", "-e", "21", "--folds", "0", ok=False)
    assert isinstance(res.exception, UsageError) and "--folds" in str(res.exception)


@pytest.mark.integration  # a subprocess: a fresh interpreter's sys.modules
def test_blend_commands_do_not_import_torch(moa_project):  # noqa: F811
    import os
    import subprocess
    import sys

    project, _ = moa_project
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom molremote.cli import app\n"
        "for a in (['evaluate', '-e', '21'], ['ls'], ['show', '21'], ['train', '-e', '21']):\n"
        "    CliRunner().invoke(app, a)\n"
        "print('torch' in sys.modules)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=project,
        env={**os.environ, "MOLREMOTE_PROJECT": str(project)},
        timeout=300,
    )
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stdout + r.stderr
    assert (project / "runs" / "0021_outer").is_dir()  # the evaluation ran


def test_a_blend_is_an_ensemble_member_with_its_blended_oof(moa_project):  # noqa: F811
    out = json.loads(cli("ensemble", "-e", "20", "-e", "12", "--weights", "0.5,0.5", "--json").stdout)
    blend20 = json.loads(cli("evaluate", "-e", "20", "--json").stdout)
    rows = {r["name"]: r for r in out["members"]}
    assert rows["b0020"]["oof_score"] == pytest.approx(blend20["oof_score"], abs=1e-12)
    # 0.5 x blend 20 (0.25 x 10 + 0.75 x 11) + 0.5 x 12: the same as nested blend 21
    blend21 = json.loads(cli("evaluate", "-e", "21", "--json").stdout)
    assert out["oof_score"] == pytest.approx(blend21["oof_score"], abs=1e-12)
    import pandas as pd

    a, b = (pd.read_csv(x["submission"]).set_index("sig_id") for x in (out, blend21))
    pd.testing.assert_frame_equal(a.loc[b.index], b, check_exact=False, atol=1e-12, rtol=0)
