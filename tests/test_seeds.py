"""Several seeds per experiment (`training.seeds`): run keys with the seed and their round trip, a config hash
that leaves the seed list out (adding a seed keeps the runs made), (fold, seed) selection for --all-folds and
--seed, W&B ids, and the Kaggle render of one kernel per (fold, seed)."""

from __future__ import annotations

import json

import pytest

from molremote.errors import ExperimentError
from molremote.experiments import validate
from molremote.runs import key_for, parse_key, parse_key_seed, run_key
from molremote.tracking import wandb_run_id


def exp(seeds=None, seed=42, **folds):
    training = {"epochs": 2, "seed": seed} | ({"seeds": seeds} if seeds is not None else {})
    return validate(
        {
            "id": 7,
            "slug": "seedy",
            "task": {"name": "moa"},
            "model": {"name": "tabular_mlp"},
            "training": training,
            "folds": {"n_folds": 3, **folds},
        },
        file=None,
    )


def test_run_keys_carry_the_seed_and_parse_back():
    e = exp([0, 1, 2])
    k = run_key(e.with_seed(1), 2)
    assert k == f"0007_seedy/fold2-s1-{e.config_hash}"
    assert parse_key_seed(k) == ("0007_seedy", 2, 1, e.config_hash)
    assert parse_key(k) == ("0007_seedy", 2, e.config_hash)  # the 3-field form still gives the hash
    # a single-seed experiment keeps the old key form, and parses with no seed
    one = exp()
    assert run_key(one, 0) == f"0007_seedy/fold0-{one.config_hash}"
    assert parse_key_seed(run_key(one, 0)) == ("0007_seedy", 0, None, one.config_hash)
    assert key_for("0007_seedy", 4, "abc", 12) == "0007_seedy/fold4-s12-abc"
    with pytest.raises(ValueError, match="with_seed"):  # the unseeded experiment names no run of its seeds
        run_key(e, 0)


def test_hash_leaves_out_the_seed_list_and_json_keeps_older_experiments():
    a, b = exp([0, 1]), exp([0, 1, 2, 3])
    assert a.config_hash == b.config_hash  # adding seeds keeps the runs already made
    assert a.with_seed(1).config_hash == a.config_hash  # every (fold, seed) run shares the experiment's hash
    assert exp().config_hash != a.config_hash  # one seed vs several: different runs
    assert "seeds" not in exp().to_json()["training"]  # an experiment without seeds: JSON (and hash) unchanged
    assert exp([0, 1]).with_seed(1).to_json()["training"]["seed"] == 1
    from molremote.experiments import Experiment

    e = exp([3, 5]).with_seed(5)
    back = Experiment.from_json(json.loads(json.dumps(e.to_json())))
    assert (back.config_hash, back.training.seed, back.run_seed) == (e.config_hash, 5, 5)


def test_select_runs_covers_folds_times_seeds():
    e = exp([0, 1])
    assert e.select_runs(all_folds=True) == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert e.select_runs(fold=2) == [(2, 0), (2, 1)]
    assert e.select_runs(fold=2, seed=1) == [(2, 1)]
    assert exp().select_runs(all_folds=True) == [(0, None), (1, None), (2, None)]
    with pytest.raises(ExperimentError, match=r"seed 7 is not one of experiment 7's training.seeds \[0, 1\]"):
        e.select_runs(seed=7)
    with pytest.raises(ExperimentError, match="lists no training.seeds"):
        exp().select_runs(seed=0)


@pytest.mark.parametrize("bad", [[], [1, 1], [-1]])
def test_bad_seed_lists_are_refused(bad):
    with pytest.raises(ExperimentError, match="training.seeds.*distinct seeds"):
        exp(bad)


def test_wandb_id_per_seed():
    assert wandb_run_id(7, 1, "abc", 2) == "0007-f1-s2-abc"
    assert wandb_run_id(7, 1, "abc") == "0007-f1-abc"


def test_kaggle_renders_one_kernel_per_fold_and_seed(tmp_path):
    from molremote.backends.base import Job
    from molremote.backends.kaggle import KaggleBackend
    from tests.backends.conftest import fixed_bundle

    e = exp([0, 1]).to_json()
    be = KaggleBackend(username="u", kernels_dir=str(tmp_path), inline_max_mb=0)
    slugs = set()
    for fold in (0, 1):
        for s in (0, 1):
            job = Job(
                job_id=f"j-f{fold}-s{s}",
                experiment=e,
                folds=[fold],
                bundle=fixed_bundle(),
                seed=s,
                train_args=["--seed", str(s)],
            )
            files = be.render(job)
            meta = json.loads(files["kernel-metadata.json"])
            script = files["molremote_kernel.py"]
            assert meta["title"] == f"mr-0007-f{fold}-s{s}-{e['config_hash'][:8]}"
            assert f"'run_key': '0007_seedy/fold{fold}-s{s}-{e['config_hash']}'" in script
            assert "'train_args': ['--seed', '" + str(s) + "']" in script
            assert f"--kaggle --fold {fold} --seed {s}" in script  # the relaunch command names the seed
            slugs.add(meta["title"])
    assert len(slugs) == 4
