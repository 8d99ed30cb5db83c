"""Experiment definitions: resolution, hashing, overrides, and errors that name the file and field."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from molremote.errors import ExperimentError
from molremote.experiments import Experiment, Registry, apply_overrides, diff
from tests.conftest import ROOT, write_experiment

BASE = (
    'EXPERIMENT = experiment(task="belka", model={"name": "cnn1d", "embed_dim": 32}, description="base", '
    'training={"epochs": 2})\n'
)


def test_resolve_inherits_and_overrides(project):
    write_experiment(project, "0010_base.py", BASE)
    write_experiment(
        project, "0011_child.py", 'EXPERIMENT = derive(10, training={"lr": 0.01}, model={"dropout": 0.3})\n'
    )
    reg = Registry()
    base, child = reg.resolve(10), reg.resolve(11)
    assert child.parent == 10 and child.slug == "child" and child.name == "0011_child"
    assert child.training.epochs == 2 and child.training.lr == 0.01
    assert child.model.params["embed_dim"] == 32 and child.model.params["dropout"] == 0.3
    assert child.description == ""  # descriptions are not inherited
    assert base.config_hash != child.config_hash and len(base.config_hash) == 12
    # the JSON form travels and rebuilds the same experiment (same hash)
    again = Experiment.from_json(json.loads(json.dumps(child.to_json())))
    assert again.config_hash == child.config_hash and again == child.model_copy(update={"file": None})
    assert [k for k, *_ in diff(base, child)] == ["description", "model.dropout", "training.lr"]


def test_hash_ignores_description_and_backend(project):
    write_experiment(project, "0010_base.py", BASE)
    write_experiment(
        project,
        "0012_same.py",
        'EXPERIMENT = derive(10, description="other", backend={"kaggle": {"accelerator": "NvidiaL4"}})\n',
    )
    reg = Registry()
    assert reg.resolve(10).config_hash == reg.resolve(12).config_hash


def test_model_change_replaces_section(project):
    write_experiment(project, "0010_base.py", BASE)
    write_experiment(project, "0013_swap.py", 'EXPERIMENT = derive(10, model={"name": "gcn_text"})\n')
    params = Registry().resolve(13).model.params
    assert params["embed_dim"] == 256 and "channels" not in params  # parent's params not carried over a swap


E = 'EXPERIMENT = experiment(task="belka", '


@pytest.mark.parametrize(
    "name,body,field,words",
    [
        ("0020_x.py", E + 'model="cnn1d", training={"epoch": 3})\n', "training.epoch", "epochs"),
        ("0020_x.py", 'EXPERIMENT = experiment(task="belk", model="cnn1d")\n', "task.name", "belka"),
        ("0020_x.py", 'EXPERIMENT = experiment(task="belka", model="cnn2d")\n', "model.name", "cnn1d"),
        ("0020_x.py", E + 'model={"name": "cnn1d", "embed": 3})\n', "model.embed", "embed_dim"),
        ("0020_x.py", E + 'model="cnn1d", training={"epochs": "many"})\n', "training.epochs", "many"),
        ("0020_x.py", E + 'model="cnn1d", training={"epochs": 0})\n', "training.epochs", "> 0"),
        ("0020_x.py", "EXPERIMENT = derive(99)\n", "parent", "unknown parent id 99"),
        ("0020_x.py", 'EXPERIMENT = experiment(id=21, task="belka", model="cnn1d")\n', "id", "file name says 20"),
        ("0020_x.py", 'EXPERIMENT = experiment(task="belka")\n', "model", "missing"),
        ("0020_x.py", "X = 1\n", "EXPERIMENT", "must define"),
    ],
)
def test_errors_name_file_and_field(project, name, body, field, words):
    path = write_experiment(project, name, body)
    with pytest.raises(ExperimentError) as e:
        Registry().resolve(20)
    assert e.value.file == str(path) and e.value.field == field
    assert words in str(e.value) and str(path) in str(e.value)


def test_syntax_error_names_file(project):
    path = write_experiment(project, "0020_x.py", "EXPERIMENT = experiment(task=\n")
    with pytest.raises(ExperimentError, match="SyntaxError") as e:
        Registry().resolve(20)
    assert e.value.file == str(path)


def test_cycle_duplicate_and_bad_file_names(project):
    write_experiment(project, "0030_a.py", "EXPERIMENT = derive(31)\n")
    write_experiment(project, "0031_b.py", "EXPERIMENT = derive(30)\n")
    with pytest.raises(ExperimentError, match=r"parent cycle: 30 -> 31 -> 30"):
        Registry().resolve(30)
    write_experiment(project, "0030_dup.py", BASE)
    with pytest.raises(ExperimentError, match="duplicate experiment id 30"):
        Registry().ids()
    (project / "experiments" / "0030_dup.py").unlink()
    write_experiment(project, "my_exp.py", BASE)
    with pytest.raises(ExperimentError, match="NNNN_<slug>.py"):
        Registry().ids()


def test_unknown_id_suggests_near_ids(project):
    write_experiment(project, "0010_base.py", BASE)
    write_experiment(project, "0012_b.py", "EXPERIMENT = derive(10)\n")
    with pytest.raises(ExperimentError, match="unknown experiment id 11; nearest ids: 10, 12"):
        Registry().resolve(11)


def test_set_overrides(project):
    write_experiment(project, "0010_base.py", BASE)
    e = Registry().resolve(10)
    e2 = apply_overrides(e, ["training.lr=0.5", "model.channels=[8,16]", "folds.scheme=building_block"])
    assert e2.training.lr == 0.5 and e2.model.params["channels"] == [8, 16] and e2.folds.scheme == "building_block"
    assert e2.config_hash != e.config_hash
    with pytest.raises(ExperimentError) as err:
        apply_overrides(e, ["training.lrr=1"])
    assert err.value.field == "training.lrr" and "lr" in str(err.value)
    with pytest.raises(ExperimentError) as err:
        apply_overrides(e, ["training.epochs=abc"])
    assert err.value.field == "training.epochs"
    with pytest.raises(ExperimentError, match="key.path=value"):
        apply_overrides(e, ["training.epochs"])


def test_shipped_experiments_resolve():
    reg = Registry(ROOT / "experiments")
    exps = reg.all()
    assert {1, 2} <= {e.id for e in exps}
    assert reg.resolve(1).task.name == "belka" and reg.resolve(2).task.name == "text2mol"


def test_cli_paths_never_import_torch():
    code = (
        "import sys; from molremote.cli import app; from molremote.experiments import Registry; "
        "import molremote.runs, molremote.settings; "
        "[Registry().resolve_any(i) for i in Registry().ids()]; "
        "bad = [m for m in ('torch', 'kaggle', 'wandb', 'huggingface_hub', 'transformers') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    out = {}
    for cmd in (["--help"], ["ls"], ["show", "1"], ["show", "1", "--json"], ["diff", "1", "2"]):
        code = (
            f"import sys, runpy; sys.argv = ['molremote', *{cmd!r}]\n"
            "from molremote.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "sys.stderr.write('TORCH' if 'torch' in sys.modules else 'CLEAN'); sys.exit(code)"
        )
        r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0 and r.stderr.endswith("CLEAN"), (cmd, r.stdout[-500:], r.stderr[-500:])
        out[" ".join(cmd)] = r.stdout
    # and each printed what it should (not only "exit 0")
    reg = Registry()
    one, two = reg.resolve(1), reg.resolve(2)
    assert all(f" {c} " in out["--help"] for c in ("ls", "show", "diff", "train", "remote"))
    rows = {line.split()[0]: line for line in out["ls"].splitlines() if line.split() and line.split()[0].isdigit()}
    assert sorted(k for k in rows if k.isdigit()) == [f"{i:04d}" for i in reg.ids()]
    assert all(reg.resolve(i).task.name in rows[f"{i:04d}"] for i in reg.ids() if not reg.is_blend(i))
    assert all(
        reg.blend(i).task in rows[f"{i:04d}"] and " blend " in rows[f"{i:04d}"] for i in reg.ids() if reg.is_blend(i)
    )
    assert out["show 1"].startswith(f"{one.name}  hash {one.config_hash}")
    assert json.loads(out["show 1 --json"]) == one.to_json()
    assert f"{one.name} -> {two.name}" in out["diff 1 2"]
    model_row = next(line for line in out["diff 1 2"].splitlines() if "model.name" in line)
    assert f'"{one.model.name}"' in model_row and f'"{two.model.name}"' in model_row


def test_a_secret_in_an_experiment_is_refused_masked(project):
    """The experiment travels to scripts, kernels, manifests and W&B config: a credential never gets in."""
    pw = "hunter" + "2xyz"
    write_experiment(project, "0010_base.py", BASE)
    write_experiment(
        project,
        "0012_leak.py",
        'EXPERIMENT = derive(10, description="mirror https://me:' + pw + '@data.example.org/belka")\n',
    )
    with pytest.raises(ExperimentError, match=r"0012_leak.py, field 'description': holds a password in a URL") as e:
        Registry().resolve(12)
    assert "('mirror https://me:***@data.example.org/belka')" in str(e.value) and pw not in str(e.value)
    token = "hf_" + "QxZ7rT2mN9vB4kL1pW8sY3dF6gH0jA5cE2uR"
    with pytest.raises(ExperimentError, match="field 'description': holds a Hugging Face token") as e:
        apply_overrides(Registry().resolve(10), [f"description=token {token}"])
    assert token[3:] not in str(e.value)
