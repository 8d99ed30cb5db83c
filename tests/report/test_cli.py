"""`molremote plot` and `molremote report` through the real CLI: files, figures, refusals, no torch."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from molremote.cli import app
from molremote.errors import MolremoteError
from molremote.report.collect import collect
from tests.report.synth import make_project
from tests.report.test_leaderboard import png_size

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def cli(*args, code: int = 0):
    """Run a command; for an expected failure, the MolremoteError main() would turn into exit `code`."""
    res = runner.invoke(app, [str(a) for a in args])
    if code == 0:
        assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"
        return res
    assert isinstance(res.exception, MolremoteError) and res.exception.exit_code == code, repr(res.exception)
    return str(res.exception)


@pytest.fixture
def synth(project, monkeypatch):
    monkeypatch.chdir(project)
    monkeypatch.delenv("MOLREMOTE_JOBS", raising=False)
    made = make_project(project, 5, folds=3, epochs=5, seeds=2)
    return project, made


def test_plot_png_and_svg(synth, tmp_path):
    project, _ = synth
    res = cli("plot", "-e", 2, "-e", 3, "-o", tmp_path / "c.png")
    assert "6 curve(s) from 12 run(s); metric belka_ap" in res.stdout
    assert png_size(tmp_path / "c.png") == (1375, 550)  # 12.5 x 5 in at 110 dpi
    cli("plot", "-e", 2, "--metric", "belka_ap", "-o", tmp_path / "c.svg", "--title", "two seeds")
    svg = ET.parse(tmp_path / "c.svg").getroot()
    assert svg.tag.endswith("svg")
    text = (tmp_path / "c.svg").read_text()
    # two panels, each with 3 folds' mean lines and their seed bands (min-max over 2 seeds)
    assert text.count('id="FillBetweenPolyCollection_') == 6


def test_plot_refusals(synth, tmp_path):
    res = cli("plot", "-e", 2, "-o", tmp_path / "c.jpg", code=2)
    assert "must end in .png or .svg" in res and not (tmp_path / "c.jpg").exists()
    res = cli("plot", "-e", 9, "-o", tmp_path / "c.png", code=2)
    assert "no local run of experiment 9 under" in res and "molremote pull -e 9" in res
    res = cli("plot", "-e", 2, "--metric", "lrap", "-o", tmp_path / "c.png", code=2)
    assert "no run logged the validation metric 'lrap'; logged: belka_ap" in res
    assert not (tmp_path / "c.png").exists()


def test_report_file_is_self_contained_and_complete(synth, tmp_path):
    project, made = synth
    res = cli("report", "-o", tmp_path / "r.html", "--json")
    out = json.loads(res.stdout)
    assert out["experiments"] == 5 and out["runs"] == made["runs"] == 30 and out["blends"] == 1 and out["jobs"] == 1
    html = (tmp_path / "r.html").read_text()
    assert out["bytes"] == len(html.encode())
    # nothing fetched at view time: no external src/href, no <link>, no external script
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<link" not in html
    assert len(re.findall(r'<section class="page" id="exp-\d+"', html)) == 5
    curves = json.loads(re.search(r'<script type="application/json" id="curves-data">(.*?)</script>', html, re.S)[1])
    assert sorted(curves) == ["1", "2", "3", "4", "5"] and len(curves["2"]) == 3 and curves["2"][0]["seeds"] == 2
    assert curves["2"][0]["boundaries"] == [3.5]  # experiment 2's runs were resumed once
    # the description's markup is escaped, not interpreted
    assert "base &lt;cnn1d&gt; &amp; friends" in html and "base <cnn1d>" not in html
    data = collect(include_store=False)
    e2 = next(e for e in data["experiments"] if e["id"] == 2)
    assert e2["status"] == "partial" and e2["folds_done"] == 3 and e2["n_folds"] == 5 and e2["parent"] == 1
    assert e2["best_cv"] == pytest.approx(0.3 + 0.4 * 74 / 100) and e2["public"] is not None
    assert {d["key"] for d in e2["diff"]} >= {"training.lr", "model.dropout"}
    e5 = next(e for e in data["experiments"] if e["id"] == 5)
    assert e5["status"] == "running" and e5["where"] == ["slurm"]
    [job] = data["jobs"]
    assert job["backend"] == "slurm" and 41 * 60 <= job["age_s"] <= 60 * 60
    [blend] = data["blends"]
    assert [(m["experiment"], m["weight"]) for m in blend["members"]] == [(1, 0.5), (2, 0.3), (3, 0.2)]
    assert blend["heatmap"].endswith("heatmap.png")


def test_report_shows_a_broken_experiment_and_refuses_a_bad_name(synth, tmp_path):
    project, _ = synth
    (project / "experiments" / "0009_broken.py").write_text("EXPERIMENT = 1\n")
    out = json.loads(cli("report", "-o", tmp_path / "r.html", "--json").stdout)
    assert out["experiments"] == 6
    html = (tmp_path / "r.html").read_text()
    assert "must define EXPERIMENT" in html and 'data-status="invalid"' in html
    res = cli("report", "-o", tmp_path / "r.pdf", code=2)
    assert "name it *.html" in res


def test_plot_and_report_never_import_torch(synth, tmp_path):
    project, _ = synth
    env = {**os.environ, "MOLREMOTE_PROJECT": str(project), "PYTHONPATH": str(ROOT)}
    for cmd in (["plot", "-e", "2", "-o", str(tmp_path / "c.png")], ["report", "-o", str(tmp_path / "r.html")]):
        code = (
            f"import sys; sys.argv = ['molremote', *{cmd!r}]\n"
            "from molremote.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "bad = [m for m in ('torch', 'kaggle', 'wandb', 'huggingface_hub') if m in sys.modules]\n"
            "sys.stderr.write(f'BAD {bad}' if bad else 'CLEAN'); sys.exit(code)"
        )
        r = subprocess.run(
            [sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, timeout=300
        )
        assert r.returncode == 0 and r.stderr.endswith("CLEAN"), (cmd, r.stdout[-500:], r.stderr[-500:])


@pytest.mark.slow
@pytest.mark.integration
def test_plot_of_a_real_training_run(tmp_path):
    """The trainer's own metrics.jsonl (demo experiment 1, 3 short epochs) drawn by `molremote plot`."""
    env = {**os.environ, "MOLREMOTE_RUNS": str(tmp_path / "runs"), "MOLREMOTE_PROJECT": str(ROOT)}
    train = subprocess.run(
        [
            sys.executable,
            "-m",
            "molremote",
            "train",
            "-e",
            "1",
            "--set",
            "training.epochs=3",
            "--set",
            "training.max_steps_per_epoch=3",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert train.returncode == 0, train.stderr[-2000:]
    plot = subprocess.run(
        [sys.executable, "-m", "molremote", "plot", "-e", "1", "-o", str(tmp_path / "c.png")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plot.returncode == 0, plot.stderr
    assert "1 curve(s) from 1 run(s); metric belka_ap" in plot.stdout
    assert png_size(tmp_path / "c.png") == (1375, 550)
    from molremote.report.series import run_curve

    [run] = list((tmp_path / "runs").glob("0001_*/fold0-*"))
    c = run_curve(run)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert c.epochs == [1, 2, 3]
    assert c.valid["belka_ap"] == [r["valid_belka_ap"] for r in rows if "valid_belka_ap" in r]
    assert all(v is not None and v > 0 for v in c.train_loss)


def test_report_lists_runs_only_in_the_store(synth, monkeypatch):
    import shutil

    from molremote.store.ops import push_run

    project, _ = synth
    monkeypatch.setenv("MOLREMOTE_STORE", str(project / "store"))
    [run] = list((project / "runs").glob("0004_*/fold1-*"))[:1]
    push_run(run)
    shutil.rmtree(run)  # pulled nowhere: only the store has it
    data = collect()
    e4 = next(e for e in data["experiments"] if e["id"] == 4)
    [stored] = [r for r in e4["runs"] if r["where"] == "store"]
    assert stored["key"] == f"{run.parent.name}/{run.name}" and stored["status"] == "complete"
    assert stored["epochs"] is None and len(e4["runs"]) == 6  # 3 folds x 2 seeds, one of them in the store
    assert data["warnings"] == []
    # an unreachable store costs its rows, not the report
    monkeypatch.setenv("MOLREMOTE_STORE", "hf://nobody/nothing")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    data = collect()
    assert len(next(e for e in data["experiments"] if e["id"] == 4)["runs"]) == 5
    assert len(data["warnings"]) == 1 and data["warnings"][0].startswith("store: ")
