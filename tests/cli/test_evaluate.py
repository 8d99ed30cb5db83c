"""`molremote evaluate / ensemble / scores` on run folders whose predictions the real BELKA task wrote
(demo data, torch-free write_predictions), Kaggle through the real client against the loopback server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from molremote.cli import app
from molremote.errors import DataError, ExperimentError, SubmissionError
from molremote.experiments import Registry
from molremote.results.submission_files import check_submission, sha256_file
from molremote.tasks import get_task
from molremote.tasks.belka.results import SUBMISSION as BELKA
from tests.conftest import write_experiment

COMMIT = "c0ffee1234567890abcdef1234567890abcdef12"
BELKA_EXP = (
    'EXPERIMENT = experiment(task={{"name": "belka"}}, model={{"name": "cnn1d"}}, '
    'training={{"lr": {lr}}}, folds={{"n_folds": 3}})\n'
)
QUALITY = {620: 0.35, 621: 0.08}  # how much of the label each experiment's fake predictions carry


@pytest.fixture
def proj(project, tmp_path, monkeypatch):
    """A project with belka experiments 620 and 621 (3 folds) and text2mol experiment 2; no settings file."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for v in ("MOLREMOTE_CONFIG", "XDG_CONFIG_HOME", "MOLREMOTE_KAGGLE_ACCOUNT", "MOLREMOTE_KAGGLE_ENDPOINT"):
        monkeypatch.delenv(v, raising=False)
    write_experiment(project, "0620_belka_a.py", BELKA_EXP.format(lr=1e-3))
    write_experiment(project, "0621_belka_b.py", BELKA_EXP.format(lr=2e-3))
    write_experiment(
        project,
        "0002_t2m.py",
        'EXPERIMENT = experiment(task={"name": "text2mol"}, model={"name": "gcn_text"}, folds={"n_folds": 2})\n',
    )
    return project


def make_runs(project: Path, exp_id: int, folds=(0, 1, 2), status: str = "complete") -> dict:
    """Run folders as the trainer leaves them, predictions written by the real task. Returns the figures
    the task itself computes (task.score per fold, baseline) for comparison."""
    exp = Registry().resolve(exp_id)
    task = get_task(exp)
    task.load()
    rng = np.random.default_rng(exp_id)
    train, _ = task._need()
    out = {"exp": exp, "task": task, "scores": {}, "baselines": {}, "runs": {}}
    for k in folds:
        run = project / "runs" / exp.name / f"fold{k}-{exp.config_hash}"
        _, valid_idx = task.split(k)
        labels = np.clip(train.labels[valid_idx], 0, 1).astype(float)
        q = QUALITY.get(exp_id, 0.2)
        probs = np.clip(q * labels + (1 - q) * rng.random(labels.shape), 0, 1)
        task.write_predictions(run / "predictions", "valid", valid_idx, {"probs": probs})
        task.write_predictions(
            run / "predictions", "test", np.arange(task.n_test()), {"probs": rng.random((task.n_test(), 3))}
        )
        out["scores"][k] = task.score(valid_idx, {"probs": probs})
        out["baselines"][k] = task.baseline_score(valid_idx)
        (run / "manifest.json").write_text(
            json.dumps(
                {
                    "experiment": exp.id,
                    "name": exp.name,
                    "fold": k,
                    "config_hash": exp.config_hash,
                    "run_key": f"{exp.name}/fold{k}-{exp.config_hash}",
                    "run_uid": f"uid{exp_id}-{k}",
                    "status": status,
                    "code": {"commit": COMMIT, "dirty": False},
                    "baseline": out["baselines"][k],
                    "updated_at": "2026-01-01T00:00:00+00:00",
                }
            )
        )
        (run / "config.json").write_text(json.dumps(exp.to_json()))
        out["runs"][k] = run
    return out


runner = CliRunner()


def cli(*args: str, ok: bool = True):
    res = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
    return res


def cli_json(*args: str) -> dict:
    return json.loads(cli(*args, "--json").stdout)


# ------------------------------------------------------------------------------------------- evaluate
def test_evaluate_writes_submission_and_record(proj):
    r = make_runs(proj, 620)
    exp = r["exp"]
    out = cli_json("evaluate", "-e", "620")
    assert out["reused"] is False and out["metric"] == "belka_ap"
    assert {int(k): v for k, v in out["fold_scores"].items()} == pytest.approx(r["scores"], abs=1e-12)
    assert 0.5 < out["oof_score"] < 1  # labels leak into the fake predictions: well above chance
    ev_dir = proj / "runs" / exp.name / f"evaluation-{exp.config_hash}"
    assert Path(out["submission"]) == ev_dir / "submission.csv"
    test = pd.concat([pd.read_parquet(run / "predictions" / "test.parquet") for run in r["runs"].values()])
    mean = test.groupby("id")["binds"].mean()
    sub = check_submission(ev_dir / "submission.csv", BELKA, expected_ids=mean.index.to_numpy())
    np.testing.assert_allclose(sub.values[:, 0], mean.loc[sub.ids].to_numpy(), atol=1e-15)
    rec = json.loads((ev_dir / "evaluation.json").read_text())
    assert rec["config_hash"] == exp.config_hash and rec["experiment_name"] == "0620_belka_a"
    assert rec["folds"] == [0, 1, 2] and rec["submission_sha256"] == sha256_file(ev_dir / "submission.csv")
    assert {int(k): v for k, v in rec["baseline"].items()} == pytest.approx(r["baselines"])
    # same runs again: the evaluation is reused, nothing rewritten
    mtime = (ev_dir / "submission.csv").stat().st_mtime_ns
    again = cli("evaluate", "-e", "620")
    assert "unchanged, reused" in again.stdout and f"{out['oof_score']:.4f}" in again.stdout
    assert "baseline (mean)" in again.stdout and (ev_dir / "submission.csv").stat().st_mtime_ns == mtime
    # a run changed (retrained fold 1): refused without --overwrite, replaced with it
    t1 = r["runs"][1] / "predictions" / "test.parquet"
    pd.read_parquet(t1).assign(binds=lambda d: d["binds"] * 0.5).to_parquet(t1)
    res = cli("evaluate", "-e", "620", ok=False)
    assert isinstance(res.exception, SubmissionError) and "pass --overwrite" in str(res.exception)
    assert cli_json("evaluate", "-e", "620", "--overwrite")["reused"] is False
    assert (ev_dir / "submission.csv").stat().st_mtime_ns != mtime


def test_evaluate_refuses_missing_and_incomplete_folds(proj):
    make_runs(proj, 620, folds=(0, 1))
    make_runs(proj, 621, status="incomplete")
    res = cli("evaluate", "-e", "620", ok=False)
    assert isinstance(res.exception, DataError)
    msg = str(res.exception)
    assert "no complete run for fold(s) 2" in msg and "molremote train -e 620 --fold 2" in msg
    assert "no store configured" in msg or "no complete run of it in store" in msg
    res = cli("evaluate", "-e", "621", ok=False)
    assert "status 'incomplete', not 'complete'" in str(res.exception) and "--all-folds" in str(res.exception)
    res = cli("evaluate", "-e", "620", "--folds", "0,7", ok=False)
    assert isinstance(res.exception, DataError) and "fold 7 out of range 0..2" in str(res.exception)
    assert not list((proj / "runs").glob("*/evaluation-*"))  # nothing written
    # the folds that exist can be evaluated on their own, into their own folder
    out = cli_json("evaluate", "-e", "620", "--folds", "0,1")
    assert Path(out["submission"]).parent.name.endswith("-f01")


def test_evaluate_split_valid_scores_only(proj):
    r = make_runs(proj, 620)
    out = cli_json("evaluate", "-e", "620", "--split", "valid")
    assert out["submission"] is None
    assert {int(k): v for k, v in out["fold_scores"].items()} == pytest.approx(r["scores"], abs=1e-12)
    assert not list((proj / "runs").glob("*/evaluation-*"))
    res = cli("evaluate", "-e", "620", "--split", "valid", "--submit", ok=False)
    assert isinstance(res.exception, ExperimentError) and "--submit needs --split test" in str(res.exception)


def test_evaluate_pulls_a_missing_fold_from_the_store(proj, monkeypatch):
    from molremote.store import open_store
    from molremote.store.ops import push_run

    r = make_runs(proj, 620)
    store_dir = proj / "store"
    monkeypatch.setenv("MOLREMOTE_STORE", str(store_dir))
    push_run(r["runs"][1], store=open_store(str(store_dir)))
    (r["runs"][1] / "checkpoints").mkdir()
    (r["runs"][1] / "checkpoints" / "last.pt").write_bytes(b"x" * 10)
    push_run(r["runs"][1], store=open_store(str(store_dir)))
    shutil.rmtree(r["runs"][1])  # this machine did not train fold 1
    out = cli_json("evaluate", "-e", "620")
    assert {int(k): v for k, v in out["fold_scores"].items()} == pytest.approx(r["scores"], abs=1e-12)
    assert (r["runs"][1] / "predictions" / "valid.parquet").is_file()
    assert not (r["runs"][1] / "checkpoints").exists()  # predictions and metrics only


# ------------------------------------------------------------------------------------------- ensemble
def test_ensemble_of_experiments_and_a_file_aligned_by_id(proj):
    make_runs(proj, 620)
    make_runs(proj, 621)
    ev620, ev621 = cli_json("evaluate", "-e", "620"), None  # 621 is evaluated on the fly by `ensemble`
    s620 = pd.read_csv(ev620["submission"])
    rng = np.random.default_rng(5)
    other = s620.assign(binds=rng.random(len(s620))).sample(frac=1.0, random_state=1)  # shuffled rows
    f = proj / "elsewhere.csv"
    other.to_csv(f, index=False)
    out = cli_json("ensemble", "-e", "620", "-e", "621", "-i", f, "--weights", "0.5,0.3,0.2")
    ev621 = json.loads((proj / "runs" / "0621_belka_b").glob("evaluation-*/evaluation.json").__next__().read_text())
    s621 = pd.read_csv(ev621["submission"]).set_index("id")["binds"]
    expect = 0.5 * s620.set_index("id")["binds"] + 0.3 * s621 + 0.2 * other.set_index("id")["binds"]
    got = pd.read_csv(out["submission"]).set_index("id")["binds"]
    assert list(got.index) == sorted(expect.index)
    np.testing.assert_allclose(got.to_numpy(), expect.loc[got.index].to_numpy(), atol=1e-12)
    out_dir = Path(out["out_dir"])
    assert out_dir.parent == proj / "runs" / "ensembles"
    assert re.fullmatch(rf"e0620\+e0621\+elsewhere-{out['ensemble_hash'][:8]}", out_dir.name)
    assert out["heatmap"] and Path(out["heatmap"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out["oof_score"] is None and "elsewhere have no out-of-fold predictions" in out["oof_note"]
    rec = json.loads(Path(out["record"]).read_text())
    assert rec["experiments"] == [620, 621] and rec["weights"] == pytest.approx([0.5, 0.3, 0.2])
    m = {d["name"]: d for d in rec["members"]}
    assert m["e0620"]["experiment"] == 620 and m["e0620"]["config_hash"] == Registry().resolve(620).config_hash
    assert m["e0621"]["run_keys"] == [r["run_key"] for r in ev621["runs"]]
    assert m["elsewhere"]["kind"] == "file" and m["elsewhere"]["sha256"] == sha256_file(f)
    assert rec["submission"]["sha256"] == sha256_file(Path(out["submission"]))
    # the record rebuilds the same file
    from molremote.results.averaging import rebuild

    np.testing.assert_allclose(rebuild(Path(out["record"]), spec=BELKA).values[:, 0], got.to_numpy(), atol=1e-12)
    # table output: one row per member and the ensemble
    txt = cli("ensemble", "-e", "620", "-e", "621", "-i", f, "--weights", "0.5,0.3,0.2").stdout
    assert "unchanged, reused" in txt and "elsewhere" in txt and "ensemble" in txt


def test_ensemble_auto_weights_fitted_on_oof(proj):
    a, b = make_runs(proj, 620), make_runs(proj, 621)
    uni = cli_json("ensemble", "-e", "620", "-e", "621")
    auto = cli_json("ensemble", "-e", "620", "-e", "621", "--weights", "auto")
    members = {r["name"]: r for r in auto["members"]}
    for name, r in (("e0620", a), ("e0621", b)):
        ev = json.loads(
            (proj / "runs" / r["exp"].name / f"evaluation-{r['exp'].config_hash}" / "evaluation.json").read_text()
        )
        assert members[name]["oof_score"] == pytest.approx(ev["oof_score"], abs=1e-12)  # same figure as evaluate
        assert members[name]["fold_score"] == pytest.approx(np.mean(list(r["scores"].values())), abs=1e-12)
    assert auto["weights_fit"]["score"] == pytest.approx(auto["oof_score"], abs=1e-12)
    assert auto["weights_fit"]["uniform_score"] == pytest.approx(uni["oof_score"], abs=1e-12)
    assert auto["oof_score"] >= uni["oof_score"]
    assert members["e0620"]["oof_score"] > members["e0621"]["oof_score"]
    assert auto["weights"][0] > auto["weights"][1]  # the better member gets more weight
    assert auto["out_dir"] != uni["out_dir"]  # other weights: another ensemble, another folder
    rec = json.loads(Path(auto["record"]).read_text())
    assert rec["weights_fit"]["on"] == "out-of-fold predictions" and rec["metrics"]["oof_score"] == auto["oof_score"]
    txt = cli(
        "ensemble", "-e", "620", "-e", "621", "--weights", ",".join(map(str, auto["weights"])), "-o", proj / "blend.csv"
    ).stdout  # the fitted weights given by hand: the same blend, elsewhere
    assert (proj / "blend.csv").read_bytes() == Path(auto["submission"]).read_bytes()
    assert f"{auto['oof_score']:.4f}" in txt and (proj / "ensemble.json").is_file()


def test_ensemble_refusals(proj):
    make_runs(proj, 620)
    ev = cli_json("evaluate", "-e", "620")
    s = pd.read_csv(ev["submission"])
    short = proj / "short.csv"
    s.iloc[:-3].to_csv(short, index=False)
    res = cli("ensemble", "-e", "620", "-i", short, ok=False)
    assert isinstance(res.exception, SubmissionError)
    assert "id set differs" in str(res.exception) and "3 id(s)" in str(res.exception)
    res = cli("ensemble", "-e", "620", "-i", ev["submission"], "--weights", "auto", ok=False)
    assert "--weights auto needs out-of-fold predictions for every member" in str(res.exception)
    res = cli("ensemble", "-e", "620", "-e", "2", ok=False)
    assert "different tasks" in str(res.exception) and "0002_t2m: text2mol" in str(res.exception)
    odd = proj / "odd.csv"
    odd.write_text("key,score\n1,0.5\n")
    res = cli("ensemble", "-i", odd, ok=False)  # -i alone: the task comes from the header, and none fits this one
    assert "no task's submission format fits" in str(res.exception) and "--task" in str(res.exception)
    res = cli("ensemble", "-e", "620", "-i", short, "--weights", "0.5", ok=False)
    assert "1 weight(s) for 2 member(s)" in str(res.exception)
    res = cli("ensemble", "-e", "620", "--method", "median", ok=False)
    assert "choose from mean, rank, geo, logit" in str(res.exception)
    assert not (proj / "runs" / "ensembles").exists()


@pytest.mark.integration  # subprocesses
def test_commands_do_not_import_torch(proj):
    make_runs(proj, 620)
    make_runs(proj, 621)
    code = (
        "import sys\nfrom molremote.cli import main\n"
        "for args in (['evaluate', '-e', '620'], ['ensemble', '-e', '620', '-e', '621']):\n"
        "    sys.argv = ['molremote', *args]\n"
        "    try:\n        main()\n    except SystemExit as e:\n        assert not e.code, e.code\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MOLREMOTE_PROJECT": str(proj)},
    )
    assert p.returncode == 0, p.stderr
    assert "TORCH False" in p.stdout and "ensemble" in p.stdout


# ------------------------------------------------------------------------------------------- Kaggle
@pytest.fixture
def kaggle(proj, monkeypatch):
    from molremote.backends.kaggle_api import ENDPOINT_ENV
    from tests.servers.kaggle_server import KaggleServer

    with KaggleServer() as server:
        for v in ("KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR", "KAGGLE_API_ENVIRONMENT"):
            monkeypatch.delenv(v, raising=False)
        monkeypatch.setenv("KAGGLE_USERNAME", server.username)
        monkeypatch.setenv("KAGGLE_KEY", server.key)
        monkeypatch.setenv(ENDPOINT_ENV, server.url)
        yield server


@pytest.mark.integration
def test_evaluate_submit_through_the_kaggle_client(proj, kaggle):
    r = make_runs(proj, 620)
    out = cli_json("evaluate", "-e", "620", "--submit", "-m", "first try")
    [sub] = kaggle.submissions
    h = r["exp"].config_hash
    assert sub.competition == "leash-BELKA" and sub.file_name == "submission.csv"
    assert sub.description == f"molremote e0620 h{h[:8]} c{COMMIT[:7]} cv={out['oof_score']:.6f} first try"
    assert sub.content == Path(out["submission"]).read_bytes()
    rec = json.loads(Path(out["record"]).read_text())
    [entry] = rec["kaggle_submissions"]
    assert entry["ref"] == sub.ref and entry["sha256"] == sha256_file(Path(out["submission"]))
    assert entry["description"] == sub.description and entry["competition"] == "leash-BELKA"
    # the record keeps what was sent when the evaluation is replaced
    cli("evaluate", "-e", "620", "--overwrite")
    assert json.loads(Path(out["record"]).read_text())["kaggle_submissions"] == [entry]
    # text2mol has no competition: refused before any work
    res = cli("evaluate", "-e", "2", "--submit", ok=False)
    assert isinstance(res.exception, SubmissionError) and "task 'text2mol' has no Kaggle competition" in str(
        res.exception
    )
    assert len(kaggle.submissions) == 1


@pytest.mark.integration
def test_scores_join_submissions_back_to_experiments(proj, kaggle, monkeypatch):
    from molremote.backends.kaggle_api import KaggleClient

    make_runs(proj, 620)
    make_runs(proj, 621)
    ev = cli_json("evaluate", "-e", "620", "--submit")
    ens = cli_json("ensemble", "-e", "620", "-e", "621", "--weights", "0.7,0.3", "--submit")
    manual = KaggleClient().submit("leash-BELKA", Path(ev["submission"]), "late night manual try")
    refs = [s.ref for s in kaggle.submissions]
    kaggle.score(refs[0], public="0.4100", private="0.3900")
    kaggle.score(refs[1], public="0.4300", private="0.4000")
    assert kaggle.submissions[1].description == (
        f"molremote ens e0620+e0621 w=0.7,0.3 h{ens['ensemble_hash'][:8]} c{COMMIT[:7]} cv={ens['oof_score']:.6f}"
    )

    out = cli_json("scores", "--competition", "leash-BELKA")
    rows = {r["ref"]: r for r in out["submissions"]}
    assert [r["ref"] for r in out["submissions"]] == refs[::-1]  # newest first
    e, en, m = rows[refs[0]], rows[refs[1]], rows[manual]
    assert e["experiments"] == [620] and e["kind"] == "experiment" and e["public_score"] == pytest.approx(0.41)
    assert (
        e["record"] == ev["record"]
        and e["file_matches"] is True
        and e["cv"] == pytest.approx(ev["oof_score"], abs=1e-6)
    )
    assert en["experiments"] == [620, 621] and en["kind"] == "ensemble" and en["private_score"] == pytest.approx(0.40)
    assert en["record"] == ens["record"] and en["commit"] == COMMIT[:7]
    assert m["molremote"] is False and m["experiments"] == [] and m["record"] is None
    # -e: the competition from the experiment's task; only submissions naming it
    only = cli_json("scores", "-e", "621")
    assert [r["ref"] for r in only["submissions"]] == [refs[1]] and only["competition"] == "leash-BELKA"
    from molremote.cli._app import console

    monkeypatch.setattr(console, "_width", 200)  # a wide terminal: no folded cells
    txt = cli("scores").stdout  # one competition among the experiments: no need to name it
    assert str(refs[0]) in txt and "0.41000" in txt and "ens 620+621" in txt
    # commands that talk to Kaggle import no torch either
    code = (
        "import sys\nfrom molremote.cli import main\nsys.argv = ['molremote', 'scores', '-e', '620']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MOLREMOTE_PROJECT": str(proj)},
    )
    assert p.returncode == 0, p.stderr
    assert "TORCH False" in p.stdout
