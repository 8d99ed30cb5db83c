"""Per-epoch curves from run folders: epoch rows only, resumed sessions, seeds averaged with a band."""

from __future__ import annotations

import json

import pytest

from molremote.errors import ExperimentError
from molremote.experiments import Registry, apply_overrides
from molremote.report.series import average_seeds, choose_metric, read_epoch_rows, run_curve
from tests.report.synth import write_experiments, write_run


@pytest.fixture
def exp(project):
    write_experiments(project, 2)
    return Registry().resolve(2)


def test_run_curve_reads_epoch_rows_and_session_boundaries(project, exp):
    path = write_run(project / "runs", exp, 1, epochs=6, quality=0.5, sessions=3)
    with open(path / "metrics.jsonl", "a") as f:
        f.write('{"step": 999, "epoch": 6, "epoch_train_lo')  # a torn line from a killed writer
    c = run_curve(path)
    rows = [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()[:-1]]
    epoch_rows = [r for r in rows if "epoch_train_loss" in r]
    assert len(read_epoch_rows(path / "metrics.jsonl")) == 6 == len(epoch_rows)
    assert c.epochs == [1, 2, 3, 4, 5, 6] and c.fold == 1 and c.experiment == 2 and c.seed == 42
    assert c.train_loss == [r["epoch_train_loss"] for r in epoch_rows]
    assert c.valid == {"belka_ap": [r["valid_belka_ap"] for r in epoch_rows]}
    assert c.boundaries == [2.5, 4.5]  # sessions 2 and 3 began after epochs 2 and 4
    assert c.key == f"{exp.name}/fold1-{exp.config_hash}"


def test_seeds_average_into_one_curve_with_a_band(project, exp):
    runs = []
    for s in range(3):
        e = exp if s == 0 else apply_overrides(exp, [f"training.seed={42 + s}"])
        runs.append(run_curve(write_run(project / "runs", e, 0, epochs=4, quality=0.5, seed_offset=s)))
    # another fold, and a run with a different lr: a separate variant, not a seed
    runs.append(run_curve(write_run(project / "runs", exp, 1, epochs=4, quality=0.5)))
    other = apply_overrides(exp, ["training.lr=0.5"])
    runs.append(run_curve(write_run(project / "runs", other, 0, epochs=3, quality=0.5)))
    assert len({r.variant for r in runs[:3]}) == 1 and runs[4].variant != runs[0].variant
    curves = average_seeds(runs, "belka_ap")
    assert sorted((c.fold, len(c.seeds)) for c in curves) == [(0, 1), (0, 3), (1, 1)]
    three = next(c for c in curves if len(c.seeds) == 3)
    assert three.seeds == [42, 43, 44]
    for e in range(4):
        vals = [r.valid["belka_ap"][e] for r in runs[:3]]
        assert three.valid[e] == pytest.approx(sum(vals) / 3)
        assert (three.valid_lo[e], three.valid_hi[e]) == (min(vals), max(vals))
        losses = [r.train_loss[e] for r in runs[:3]]
        assert three.loss[e] == pytest.approx(sum(losses) / 3) and three.loss_lo[e] == min(losses)
    assert three.label() == "0002 fold 0 (3 seeds)"


def test_choose_metric_names_what_was_logged(project, exp):
    runs = [run_curve(write_run(project / "runs", exp, 0, epochs=2, quality=0.5))]
    assert choose_metric(runs, None) == "belka_ap"
    assert choose_metric(runs, "valid_belka_ap") == "belka_ap"
    with pytest.raises(ExperimentError, match="no run logged the validation metric 'lrap'; logged: belka_ap"):
        choose_metric(runs, "lrap")


def test_runs_of_training_seeds_share_a_hash_and_average_as_seeds(project, exp):
    """An experiment listing training.seeds: its runs share one config hash, yet each keeps its own seed."""
    many = apply_overrides(exp, ["training.seeds=[5,6]"])
    runs = [
        run_curve(write_run(project / "runs", many.with_seed(s), 0, epochs=3, quality=0.5, seed_offset=s))
        for s in (5, 6)
    ]
    assert [r.seed for r in runs] == [5, 6] and runs[0].variant == runs[1].variant
    assert [r.key.split("/")[1].split("-")[1] for r in runs] == ["s5", "s6"]
    (curve,) = average_seeds(runs, "belka_ap")
    assert curve.seeds == [5, 6]
