"""molremote/launching.py: one launch path for every backend (the CLI's `remote` only parses and prints).
Dry runs only; real launches are in tests/backends against loopback sshd, SLURM and the Kaggle server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from molremote import launching
from molremote.errors import BackendError, ExperimentError, UsageError
from molremote.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("MOLREMOTE_PROJECT", str(ROOT))
    monkeypatch.setenv("MOLREMOTE_JOBS", str(tmp_path / "jobs"))
    monkeypatch.setenv("HOME", str(tmp_path))
    for k in ("MOLREMOTE_KAGGLE_STORE", "KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(k, raising=False)
    return tmp_path


def test_every_backend_renders_through_the_same_path(env):
    settings = Settings.model_validate(
        {
            "ssh": {"hosts": {"box": {"destination": "me@box", "gpus": 2}}},
            "slurm": {"clusters": {"hpc": {"partition": "gpu"}}},
        }
    )
    plans = {
        name: launching.prepare(
            1,
            name,
            all_folds=True,
            settings=settings,
            overrides=launching.LaunchOverrides(host="box", cluster="hpc", max_time="1h"),
        )
        for name in ("kaggle", "ssh", "slurm")
    }
    folds = plans["ssh"].experiment.fold_list()
    # Kaggle: one kernel (job) per fold; ssh and slurm: one job running every fold
    assert [j.folds for j in plans["kaggle"].jobs] == [[f] for f in folds]
    assert [j.folds for j in plans["ssh"].jobs] == [[j for j in folds]] == [j.folds for j in plans["slurm"].jobs]
    assert plans["ssh"].jobs[0].gpus == 2  # the named host's GPUs
    assert plans["kaggle"].jobs[0].options["relaunch"] == f"molremote remote -e 1 --kaggle --fold {folds[0]}"
    for name, plan in plans.items():
        assert plan.bundle.path.is_file()
        for job, files in launching.render(plan):
            assert files == plan.backend.render(job), name  # --dry-run is render(), for every backend
    ((_, ssh_files),) = launching.render(plans["ssh"])
    assert "--max-time 1h" in ssh_files["launch.sh"] and "me@box" not in ssh_files["launch.sh"]
    ((_, sbatch),) = launching.render(plans["slurm"])
    assert "#SBATCH --partition=gpu" in sbatch["job.sbatch"]
    assert not (env / "jobs").exists()  # nothing launched, nothing recorded


def test_refusals_name_the_option(env):
    s = Settings()
    with pytest.raises(BackendError, match="unknown backend 'local'"):
        launching.prepare(1, "local", settings=s)
    with pytest.raises(UsageError, match="--nodes 2: needs --slurm"):
        launching.prepare(1, "kaggle", settings=s, overrides=launching.LaunchOverrides(nodes=2))
    with pytest.raises(UsageError, match="unknown SLURM cluster 'nope'"):
        launching.prepare(1, "slurm", settings=s, overrides=launching.LaunchOverrides(cluster="nope"))
    with pytest.raises(ExperimentError, match="fold 9 out of range"):
        launching.prepare(1, "slurm", fold=9, settings=s)
    plan = launching.prepare(1, "ssh", settings=s, overrides=launching.LaunchOverrides(host="me@box"))
    with pytest.raises(BackendError, match="--chain is for Kaggle"):
        launching.chain(plan)


def test_seeds_make_one_kaggle_kernel_per_fold_and_seed(env):
    """`--set training.seeds=[...]` (a field older experiments leave out) reaches every backend: Kaggle gets a job
    per (fold, seed) with `--seed`, ssh/slurm one job whose trainer trains each fold's seeds (or the one given)."""
    sets = ["training.seeds=[4,7]"]
    kaggle = launching.prepare(1, "kaggle", all_folds=True, sets=sets, settings=Settings())
    folds = kaggle.experiment.fold_list()
    assert [(j.folds, j.seed, j.train_args) for j in kaggle.jobs] == [
        ([f], s, ["--seed", str(s)]) for f in folds for s in (4, 7)
    ]
    assert kaggle.jobs[1].options["relaunch"] == f"molremote remote -e 1 --kaggle --fold {folds[0]} --seed 7 " + (
        "--set training.seeds=[4,7]"
    )
    assert len({kaggle.backend.kernel_folder(j).name for j in kaggle.jobs}) == 2 * len(folds)
    slurm = launching.prepare(1, "slurm", all_folds=True, sets=sets, settings=Settings())
    ((job, files),) = launching.render(slurm)
    assert job.folds == folds and "--seed" not in files["job.sbatch"]  # each array task: its fold's seeds
    assert json.loads(files["experiment.json"])["training"]["seeds"] == [4, 7]
    one = launching.prepare(
        1, "ssh", fold=0, seed=7, sets=sets, settings=Settings(), overrides=launching.LaunchOverrides(host="me@box")
    )
    assert one.jobs[0].train_args == ["--seed", "7"]
    with pytest.raises(ExperimentError, match="seed 5 is not one of"):
        launching.prepare(
            1, "ssh", seed=5, sets=sets, settings=Settings(), overrides=launching.LaunchOverrides(host="me@box")
        )


def test_resume_takes_over_an_ended_job_of_the_same_run_and_refuses_any_other(env):
    """`remote --resume JOB`: the new job's script moves that job's run folder in before each fold trains; a
    job of another experiment, configuration, backend or remote root is refused, naming what differs."""
    from molremote import jobs
    from molremote.jobs import JobRecord

    settings = Settings.model_validate({})
    ov = launching.LaunchOverrides(remote_root="/scratch/mr")
    first = launching.prepare(1, "slurm", settings=settings, overrides=ov)
    exp = first.experiment
    old = JobRecord(
        "old-job",
        "slurm",
        exp.name,
        exp.id,
        exp.config_hash,
        first.jobs[0].folds,
        state="failed",
        handle={"job_dir": "/scratch/mr/jobs/old-job", "slurm_job_id": "7"},
        options={"remote_root": "/scratch/mr"},
    )
    jobs.save(old)
    plan = launching.prepare(
        1,
        "slurm",
        settings=settings,
        overrides=launching.LaunchOverrides(remote_root="/scratch/mr", resume="old-job"),
        for_dry_run=True,
    )
    ((job, files),) = launching.render(plan)
    script = files["job.sbatch"]
    assert "RESUME_JOB=old-job" in script and f'local key={exp.name}/fold"$1"-{exp.config_hash}' in script
    assert script.index('train_env\nadopt_run "$FOLD"') < script.index("train --experiment-json")
    assert any("resuming job old-job" in n for n in plan.notes)

    def refused(msg: str, **kw) -> None:
        with pytest.raises(UsageError, match=msg):
            launching.prepare(
                kw.pop("exp", 1),
                kw.pop("backend", "slurm"),
                settings=settings,
                sets=kw.pop("sets", ()),
                overrides=launching.LaunchOverrides(**{"remote_root": "/scratch/mr", "resume": "old-job", **kw}),
                for_dry_run=True,
            )

    refused("that job used remote_root '/scratch/mr', this launch '/elsewhere'", remote_root="/elsewhere")
    refused(r"that job trained 0001_\w+ \(config \w+\), this launch 0001_\w+ \(config \w+\)", sets=["training.lr=0.5"])
    refused("that job ran on slurm, not ssh", backend="ssh", host="box")
    refused("for --ssh and --slurm jobs", backend="kaggle")
    with pytest.raises(BackendError, match="no job 'nope'"):
        launching.prepare(1, "slurm", settings=settings, overrides=launching.LaunchOverrides(resume="nope"))
