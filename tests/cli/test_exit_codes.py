"""The README's exit-code table, each code from a real `python -m molremote` process, with the message it prints:
0 done, 75 stopped early (deadline), 2 bad experiment or option, 3 data missing, 4 no usable checkpoint,
5 store, 6 backend, 7 submission format, 8 settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A belka experiment on the shipped demo data, as small as the model allows: every training process here costs
# mostly its imports (torch), not its two steps.
TINY = """from molremote.experiments import experiment
EXPERIMENT = experiment(
    task={"name": "belka"},
    model={"name": "cnn1d", "embed_dim": 4, "channels": [4], "hidden": [8], "dropout": 0.0},
    training={"epochs": 1, "batch_size": 256, "eval_batch_size": 4096, "max_steps_per_epoch": 2,
              "device": "cpu", "threads": 1},
    folds={"n_folds": 2, "scheme": "building_block"},
)
"""


def tiny_project(path: Path, *, git: bool = False) -> Path:
    """A user's project: experiments/0003_belka_tiny.py (and a git commit when it is to be bundled)."""
    (path / "experiments").mkdir(parents=True)
    (path / "experiments" / "0003_belka_tiny.py").write_text(TINY)
    if git:
        (path / "pyproject.toml").write_text(
            '[project]\nname = "p"\ndependencies = []\n[project.optional-dependencies]\ntrain = []\n'
        )
        for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "init"]):
            subprocess.run(
                ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=path, check=True, capture_output=True
            )
    return path


def molremote(project: Path, *args: str, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    """`python -m molremote ARGS` in the project, with no store, settings file or tracking from this machine."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("MOLREMOTE_", "WANDB_", "KAGGLE_")) and k != "HF_TOKEN"
    }
    env = {
        **base,
        "MOLREMOTE_PROJECT": str(project),
        "MOLREMOTE_JOBS": str(project / ".molremote" / "jobs"),
        "WANDB_MODE": "disabled",
        "OMP_NUM_THREADS": "1",
        "COLUMNS": "250",
        **env,
    }  # Rich: no wrapping
    return subprocess.run(
        [sys.executable, "-m", "molremote", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def no_traceback(r: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in r.stderr + r.stdout, r.stderr


def test_readme_table_is_the_one_tested_here():
    """The README's table is the one below, and each of its codes has a `test_<code>_...` here."""
    text = (ROOT / "README.md").read_text()
    line = " ".join(text[text.index("Exit codes:") :].split("\n\n")[0].split())
    table = {
        0: "done",
        75: "stopped early",
        2: "bad experiment or option",
        3: "data missing",
        4: "no usable checkpoint",
        5: "store",
        6: "backend",
        7: "submission format",
        8: "settings",
        9: "run busy",
        10: "corrupt manifest",
    }
    for code, meaning in table.items():
        assert f"{code} {meaning}" in line, (code, line)
    assert {int(c) for c in re.findall(r"(?:: |, )(\d+) ", line)} == set(table), line
    tested = {int(c) for c in re.findall(r"^def test_(\d+)_", Path(__file__).read_text(), flags=re.MULTILINE)}
    # 4 is tested with 75 (test_75_deadline_then_4_...); 9 and 10 from real processes in
    # tests/training/test_run_safety.py (a second trainer on a locked run; a damaged manifest, then --repair)
    assert set(table) <= tested | {4, 9, 10}


def test_0_done(tmp_path):
    p = tiny_project(tmp_path / "p")
    r = molremote(p, "show", "3", "--json")
    assert r.returncode == 0, r.stderr
    exp = json.loads(r.stdout)
    assert (exp["id"], exp["task"]["name"], exp["model"]["channels"]) == (3, "belka", [4])


def test_2_bad_experiment(tmp_path):
    p = tiny_project(tmp_path / "p")
    r = molremote(p, "train", "-e", "3", "--set", "training.epoch=1")
    assert r.returncode == 2 and "field 'training.epoch'" in r.stderr and "did you mean epochs" in r.stderr, r.stderr
    r = molremote(p, "show", "99")
    assert r.returncode == 2 and "unknown experiment id 99; nearest ids: 3" in r.stderr, r.stderr
    (p / "experiments" / "0004_bad.py").write_text(
        "from molremote.experiments import experiment\n"
        "EXPERIMENT = experiment(task='belka', model='cnn1d', trainin={})\n"
    )
    r = molremote(p, "show", "4")
    assert r.returncode == 2, r.stderr
    assert f"file {p / 'experiments' / '0004_bad.py'}, field 'trainin': unknown key; did you mean training?" in r.stderr
    no_traceback(r)
    assert not (p / "runs").exists()  # refused before anything was written


def test_2_unknown_option(tmp_path):
    p = tiny_project(tmp_path / "p")
    r = molremote(p, "train", "-e", "3", "--bogus")
    assert r.returncode == 2 and "No such option" in r.stderr and "--bogus" in r.stderr, r.stderr
    no_traceback(r)


# Options whose value the command cannot use: a UsageError, exit 2 as the README says (one case each).
OPTION_ERRORS = {
    "no place to run": (["remote", "-e", "3"], "choose exactly one place to run"),
    "--nodes without --slurm": (
        ["remote", "-e", "3", "--ssh", "box", "--nodes", "2", "--dry-run"],
        "--nodes 2: needs --slurm",
    ),
    "--nodes 0": (["remote", "-e", "3", "--slurm", "--nodes", "0", "--dry-run"], "--nodes 0: must be at least 1"),
    "unknown --cluster": (
        ["remote", "-e", "3", "--slurm", "--cluster", "nope", "--dry-run"],
        "unknown SLURM cluster 'nope'",
    ),
    "unknown --accelerator": (
        ["remote", "-e", "3", "--kaggle", "--accelerator", "K80", "--dry-run"],
        "unknown Kaggle accelerator 'K80'",
    ),
    "data push --task": (["data", "push", "--task", "nope", "--path", "."], "unknown task 'nope'"),
    "data prepare --task": (
        ["data", "prepare", "--task", "text2mol", "--input", "x", "--out", "y"],
        "task 'text2mol' has no data preparation step",
    ),
    "logs without a job": (["logs"], "name the job: -e EXPERIMENT"),
}


@pytest.mark.parametrize("case", list(OPTION_ERRORS))
def test_2_bad_option_value(tmp_path, case):
    p = tiny_project(tmp_path / "p", git=True)
    args, message = OPTION_ERRORS[case]
    r = molremote(p, *args)
    assert message in r.stderr, r.stderr  # the message is right today: only the code is wrong
    no_traceback(r)
    assert r.returncode == 2, (r.returncode, r.stderr)


def test_3_data_missing(tmp_path):
    p = tiny_project(tmp_path / "p")
    r = molremote(p, "train", "-e", "3", "--set", f"data.root={tmp_path / 'nodata'}", "--no-progress")
    assert r.returncode == 3, r.stderr
    assert f"data file {tmp_path / 'nodata' / 'train.parquet'} not found" in r.stderr
    assert "experiment 3" in r.stderr and "leave data.root unset for the small demo data" in r.stderr
    no_traceback(r)
    assert not list(p.glob("runs/*/*"))  # no run folder made


@pytest.mark.slow  # two training processes (torch imports): 15-40 s on a busy 2-core machine
def test_75_deadline_then_4_no_usable_checkpoint(tmp_path):
    p = tiny_project(tmp_path / "p")
    r = molremote(p, "train", "-e", "3", "--max-time", "0s", "--no-progress")
    assert r.returncode == 75, r.stderr
    run = Path(r.stdout.strip().splitlines()[-1])
    assert run.parent == p / "runs" / "0003_belka_tiny" and run.name.startswith("fold0-")
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "incomplete" and m["stop_reason"] == "deadline", m
    last = run / "checkpoints" / "last.pt"
    assert last.stat().st_size > 1000
    last.write_bytes(b"truncated")
    r = molremote(p, "train", "-e", "3", "--no-progress")
    assert r.returncode == 4, r.stderr
    assert "no usable checkpoint" in r.stderr and "last.pt" in r.stderr
    no_traceback(r)
    assert last.read_bytes() == b"truncated"  # nothing overwritten, nothing retrained over it


def test_5_store(tmp_path):
    p = tiny_project(tmp_path / "p")
    r = molremote(p, "push", "-e", "3")
    assert r.returncode == 5 and "no store configured" in r.stderr and "MOLREMOTE_STORE" in r.stderr, r.stderr
    r = molremote(p, "pull", "-e", "3")  # no store and no remote job to fetch from: said, exit 5
    assert r.returncode == 5, r.stderr
    assert "no store configured and no remote job of experiment 3 recorded here: nothing to pull from" in r.stderr
    store = tmp_path / "store"
    r = molremote(p, "pull", "-e", "3", MOLREMOTE_STORE=str(store))  # a store folder that is not there
    assert r.returncode == 5 and "does not exist" in r.stderr and str(store) in r.stderr, (r.returncode, r.stderr)
    store.mkdir()
    r = molremote(p, "pull", "-e", "3", MOLREMOTE_STORE=str(store))  # a store with nothing of experiment 3
    assert r.returncode == 5 and "experiment 3" in r.stderr, (r.returncode, r.stderr)
    no_traceback(r)


def test_error_messages_keep_square_brackets(tmp_path):
    p = tiny_project(tmp_path / "p")
    r = molremote(p, "push", "-e", "3")
    assert r.returncode == 5 and "set [store] url in molremote.toml" in r.stderr, r.stderr


def test_6_backend(tmp_path):
    p = tiny_project(tmp_path / "p", git=True)
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host *\n  ConnectTimeout 5\n")
    r = molremote(
        p,
        "remote",
        "-e",
        "3",
        "--ssh",
        "nohost.invalid",
        "--ssh-config",
        str(cfg),
        "--remote-root",
        str(tmp_path / "remote"),
    )
    assert r.returncode == 6, r.stderr
    assert "cannot reach nohost.invalid over ssh" in r.stderr and "nohost.invalid" in r.stderr
    no_traceback(r)
    r = molremote(p, "status")
    assert r.returncode == 0 and "no jobs" in r.stdout  # a launch that never reached the host records no job
    r = molremote(p, "cancel", "--job", "nope")
    assert r.returncode == 6 and "no job 'nope'" in r.stderr, r.stderr


def test_7_submission_format(tmp_path):
    p = tiny_project(tmp_path / "p")
    bad = p / "other.csv"
    bad.write_text("id,score\n1,0.5\n2,0.25\n")
    r = molremote(p, "ensemble", "-i", str(bad), "-i", str(bad), "-o", str(tmp_path / "ens"))
    assert r.returncode == 7, r.stderr
    assert f"{bad}: id, score" in r.stderr and "belka: id, binds" in r.stderr and "--task" in r.stderr
    no_traceback(r)
    assert not (tmp_path / "ens").exists()


def test_8_settings(tmp_path):
    p = tiny_project(tmp_path / "p")
    (p / "molremote.toml").write_text('[store]\nurll = "runs-store"\n')
    r = molremote(p, "config")
    assert r.returncode == 8, r.stderr
    assert f"{p / 'molremote.toml'}: unknown key 'store.urll'; did you mean 'url'?" in r.stderr
    no_traceback(r)
    (p / "molremote.toml").unlink()
    r = molremote(p, "config", MOLREMOTE_WANDB_MODE="sometimes")
    assert r.returncode == 8 and "MOLREMOTE_WANDB_MODE" in r.stderr and "sometimes" in r.stderr, r.stderr
