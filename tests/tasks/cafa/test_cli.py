"""Experiment 4 (the CAFA demo) through the real CLI: train one fold briefly, evaluate it (fold score equal to
the metric recomputed from the prediction file, the naive baseline recorded, a long-format submission that
passes the format check); per-term thresholds saved and applied; the real-data experiments refuse with exit
3 and the Kaggle download command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from molremote.tasks.cafa.data import read_fasta
from molremote.tasks.cafa.results import read_valid
from molremote.tasks.cafa.submission import check_long

from .conftest import DEMO

ROOT = Path(__file__).resolve().parents[3]
ENV = {"OMP_NUM_THREADS": "1", "MOLREMOTE_TRACKING": "disabled", "WANDB_MODE": "disabled"}


def cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **ENV, "MOLREMOTE_PROJECT": str(project)}
    return subprocess.run(
        [sys.executable, "-m", "molremote", *args], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow  # two CLI processes, one trains (torch): ~20-40 s on a busy 2-core machine
@pytest.mark.integration
def test_experiment_4_trains_then_evaluates_with_a_long_format_submission(project):
    shutil.copy(ROOT / "experiments" / "0004_cafa_demo.py", project / "experiments")
    sets = ["--set", "training.epochs=2", "--set", "task.per_term_thresholds=true"]
    r = cli(project, "train", "-e", "4", *sets, "--no-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    run = Path(r.stdout.strip().splitlines()[-1])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["best"]["metric"] == "fmax_w" and 0.2 < manifest["best"]["value"] < 1
    assert 0.3 < manifest["baseline"] < 0.7  # the naive term-frequency F-max of the same fold
    thresholds = json.loads((run / "predictions" / "thresholds.json").read_text())
    assert set(thresholds["thresholds"].values()) <= {round(x, 2) for x in np.arange(0.10, 0.851, 0.05)}
    r = cli(project, "evaluate", "-e", "4", *sets, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    ev = json.loads(r.stdout)
    assert ev["task"] == "cafa" and ev["metric"] == "fmax_w" and ev["greater_is_better"] is True
    valid = run / "predictions" / "valid.parquet"
    assert ev["fold_scores"]["0"] == pytest.approx(read_valid(valid).fmax_w, abs=1e-12)
    assert ev["fold_scores"]["0"] == pytest.approx(manifest["best"]["value"], abs=1e-9)  # training = evaluate
    details = ev["notes"]["fold_details"]["0"]["namespaces"]
    assert set(details) == {"BP", "MF", "CC"} and all(d["smin_w"] > 0 and 0 < d["fmax"] <= 1 for d in details.values())
    assert ev["baseline"]["0"] == pytest.approx(manifest["baseline"])
    sub = Path(ev["submission"])
    assert sub.name == "submission.tsv"
    test_ids = read_fasta(DEMO / "testsuperset.fasta").ids
    stats = check_long(sub, proteins=test_ids)
    assert stats["proteins"] == len(test_ids) and stats["max_terms"] <= 1500
    first = sub.read_text().splitlines()[0].split("\t")
    assert len(first) == 3 and first[1].startswith("GO:")  # no header
    # the test predictions were calibrated with the saved thresholds: a term's threshold maps to 0.5
    t = pq.read_table(run / "predictions" / "test.parquet").to_pandas()
    assert set(t.columns) == {"EntryID", "term", "score"} and t["score"].between(0.001, 1).all()
    # the core's long-format ensemble recognises CAFA files by their first row and aligns by (protein, term)
    half = project / "half.tsv"
    rows = [ln.split("\t") for ln in sub.read_text().splitlines()]
    half.write_text("".join(f"{a}\t{b}\t{float(c) / 2:.3g}\n" for a, b, c in rows[::2]))
    ens = cli(project, "ensemble", "-i", str(sub), "-i", str(half), "-o", str(project / "ens"), "--json")
    assert ens.returncode == 0, ens.stdout + ens.stderr
    out = json.loads(ens.stdout)
    assert out["task"] == "cafa"
    merged = {
        tuple(r[:2]): float(r[2]) for r in (ln.split("\t") for ln in Path(out["submission"]).read_text().splitlines())
    }
    a, b, c = rows[0]
    assert merged[(a, b)] == pytest.approx((float(c) + float(c) / 2) / 2, rel=2e-2)  # both members have it
    a, b, c = rows[1]
    assert merged[(a, b)] == pytest.approx(float(c) / 2, rel=2e-2)  # missing in `half`: counts as 0


def test_real_data_experiments_refuse_with_the_download_command(project):
    for f in (ROOT / "experiments").glob("030*_cafa_*.py"):
        shutil.copy(f, project / "experiments")
    r = cli(project, "train", "-e", "300", "--no-progress")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "data/cafa/train_sequences.fasta not found" in r.stderr
    assert "kaggle competitions download -c cafa-6-protein-function-prediction" in r.stderr
