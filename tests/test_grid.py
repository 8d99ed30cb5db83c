"""`molremote derive PARENT --grid ...`: numbered files at the next free ids, their ids printed, each resolving
to the parent plus its grid point; a bad key or value is refused naming it and nothing is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from molremote.errors import ExperimentError
from molremote.experiments import Registry
from molremote.grid import derive_grid, split_values

from .conftest import write_experiment

PARENT = (
    'EXPERIMENT = experiment(task="affinity", model={"name": "clip_pl"}, '
    'training={"lr": 1e-3, "batch_size": 128, "epochs": 2}, description="base")\n'
)


def cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "molremote", *args],
        cwd=project,
        env={**os.environ, "MOLREMOTE_PROJECT": str(project)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_derive_grid_writes_numbered_files_and_prints_their_ids(project):
    write_experiment(project, "0400_base.py", PARENT)
    write_experiment(project, "0402_taken.py", "EXPERIMENT = derive(400)\n")
    r = cli(project, "derive", "400", "--grid", "training.lr=1e-4,3e-4", "--grid", "training.batch_size=256,512")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["401", "403", "404", "405"]  # the next free ids, 402 skipped
    reg = Registry(project / "experiments")
    got = {(reg.resolve(i).training.lr, reg.resolve(i).training.batch_size) for i in (401, 403, 404, 405)}
    assert got == {(1e-4, 256), (1e-4, 512), (3e-4, 256), (3e-4, 512)}
    e = reg.resolve(404)
    assert e.parent == 400 and e.training.epochs == 2 and e.task.name == "affinity"
    text = reg.files[404].read_text()
    assert "derive(\n    400," in text and "Why: tuning training.lr, training.batch_size" in text
    assert "molremote derive 400 --grid training.lr=1e-4,3e-4 --grid training.batch_size=256,512" in text
    ls = cli(project, "ls", "--json")
    assert ls.returncode == 0 and {r["id"] for r in __import__("json").loads(ls.stdout)} >= {401, 403, 404, 405}


@pytest.mark.parametrize(
    "grid,field,text",
    [
        ("training.lrr=1e-4,3e-4", "training.lrr", "did you mean lr"),
        ("training.batch_size=0,256", "training.batch_size", "must be > 0"),
        ("model.nope=1,2", "model.nope", "unknown key"),
        ("training.lr", "--grid", "expects key.path=v1,v2"),
        ("training.lr=1e-4,1e-4", "training.lr", "listed twice"),
    ],
)
def test_a_bad_grid_is_refused_naming_the_key_and_nothing_is_written(project, grid, field, text):
    write_experiment(project, "0400_base.py", PARENT)
    before = sorted((project / "experiments").iterdir())
    with pytest.raises(ExperimentError) as e:
        derive_grid(400, [grid], directory=project / "experiments")
    assert e.value.field == field and text in str(e.value)
    assert sorted((project / "experiments").iterdir()) == before


def test_cli_error_exit_2_names_the_key(project):
    write_experiment(project, "0400_base.py", PARENT)
    r = cli(project, "derive", "400", "--grid", "training.lrr=1e-4,3e-4")
    assert r.returncode == 2 and "training.lrr" in r.stderr and "nothing written" in r.stderr
    assert [p.name for p in (project / "experiments").iterdir()] == ["0400_base.py"]


def test_values_split_on_top_level_commas_only_and_why_is_recorded(project):
    assert split_values('1,[2,3],{"a": 1, "b": 2},"x,y"') == ["1", "[2,3]", '{"a": 1, "b": 2}', '"x,y"']
    write_experiment(project, "0400_base.py", PARENT)
    (p,) = derive_grid(
        400,
        ["model.ligand_params=" + '{"channels": [8, 16]}'],
        sets=["training.epochs=1"],
        why="smaller CNN",
        directory=project / "experiments",
        today="2026-11-30",
    )
    e = Registry(project / "experiments").resolve(p.id)
    assert e.model.params["ligand_params"] == {"channels": [8, 16]} and e.training.epochs == 1
    assert "Why: smaller CNN" in p.path.read_text() and "2026-11-30" in p.path.read_text()


def test_derive_imports_no_torch(project):
    write_experiment(project, "0400_base.py", PARENT)
    code = (
        "import sys\nfrom molremote.cli import main\nsys.argv = ['molremote', 'derive', '400', '--grid', "
        "'training.lr=1e-4,3e-4']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'derive imported torch'\nprint('no torch')"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env={**os.environ, "MOLREMOTE_PROJECT": str(project)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and r.stdout.splitlines() == ["401", "402", "no torch"], r.stdout + r.stderr
