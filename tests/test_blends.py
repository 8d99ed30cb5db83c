"""molremote.blends: blend experiments declared in experiment files, validated when resolved (members exist, no
cycle, one task, weights all numbers or all auto), refused where a model is needed, and the shipped MoA blends
(the pending 0290-0292 with stand-in members) resolve to the write-up's leaf weights. Torch-free, no runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from molremote.blends import fixed_leaf_weights, leaf_ids
from molremote.errors import ExperimentError
from molremote.experiments import Registry
from tests.conftest import write_experiment

ROOT = Path(__file__).resolve().parent.parent
MOA = 'EXPERIMENT = experiment(task={"name": "moa"}, model={"name": "tabular_mlp"}, folds={"scheme": "kfold"})\n'


def write_blend(project: Path, name: str, members: str, **extra: str) -> Path:
    p = project / "experiments" / name
    args = "".join(f", {k}={v}" for k, v in extra.items())
    p.write_text(f"from molremote.experiments import blend\nEXPERIMENT = blend(members=[{members}]{args})\n")
    return p


@pytest.fixture
def moa(project):
    write_experiment(project, "0010_a.py", MOA)
    write_experiment(project, "0011_b.py", 'EXPERIMENT = derive(10, training={"seed": 1})\n')
    return project


def test_a_blend_resolves_with_members_task_and_hash(moa):
    write_blend(moa, "0020_mix.py", '{"experiment": 10, "weight": 0.7}, {"experiment": 11, "weight": 0.3}')
    reg = Registry()
    b = reg.blend(20)
    assert reg.is_blend(20) and not reg.is_blend(10)
    assert b.task == "moa" and b.name == "0020_mix" and [m.experiment for m in b.members] == [10, 11]
    assert b.member_hashes == (reg.resolve(10).config_hash, reg.resolve(11).config_hash)
    assert b.to_json()["model"] == {"name": "blend"} and b.to_json()["kind"] == "blend"
    assert [e.id for e in reg.all()] == [10, 11]  # all(): plain experiments only
    # the hash follows the members' configurations and the weights
    h = b.config_hash
    write_experiment(moa, "0011_b.py", 'EXPERIMENT = derive(10, training={"seed": 2})\n')
    assert Registry().blend(20).config_hash != h


@pytest.mark.parametrize(
    ("members", "error", "field"),
    [
        (
            '{"experiment": 10, "weight": 1}, {"experiment": 12, "weight": 1}',
            r"member experiment 12 not found: no "
            r"experiments/0012_\*\.py \(nearest ids: 11, 10, 20\)",
            "members[1].experiment",
        ),
        (
            '{"experiment": 10, "weight": 0.5}, {"experiment": 11, "weight": "auto"}',
            "all numbers or all 'auto'",
            "members",
        ),
        ('{"experiment": 10, "weight": -1}', "must be a finite number >= 0 or 'auto'", "members[0].weight"),
        ('{"experiment": 10}', "missing", "members[0].weight"),
        ('{"experiment": 10, "weight": 1, "seed": 3}', "unknown key", "members[0].seed"),
        ('{"experiment": 10, "weight": 0}, {"experiment": 11, "weight": 0}', "weights sum to 0", "members"),
        ("", "at least one member", "members"),
        (
            '{"experiment": 12, "weight": 1}, {"experiment": 10, "weight": 1}',
            "members are of different tasks "
            r"\(12: belka, 10: moa\)",
            "members",
        ),
    ],
)
def test_bad_blends_are_refused_naming_file_and_field(moa, members, error, field):
    if "different tasks" in error:
        write_experiment(moa, "0012_belka.py", 'EXPERIMENT = experiment(task="belka", model="cnn1d")\n')
    path = write_blend(moa, "0020_bad.py", members)
    with pytest.raises(ExperimentError, match=error) as e:
        Registry().blend(20)
    assert e.value.file == str(path) and e.value.field == field


def test_cycles_through_nested_blends_are_refused(moa):
    write_blend(moa, "0020_x.py", '{"experiment": 10, "weight": 1}, {"experiment": 21, "weight": 1}')
    write_blend(moa, "0021_y.py", '{"experiment": 11, "weight": 1}, {"experiment": 20, "weight": 1}')
    with pytest.raises(ExperimentError, match=r"blend cycle: 20 -> 21 -> 20"):
        Registry().blend(20)


def test_a_blend_has_nothing_to_train_or_derive_from(moa):
    write_blend(moa, "0020_mix.py", '{"experiment": 10, "weight": 1}, {"experiment": 11, "weight": 1}')
    write_experiment(moa, "0030_child.py", "EXPERIMENT = derive(20)\n")
    reg = Registry()
    with pytest.raises(ExperimentError, match=r"experiment 20 is a blend of experiments 10, 11: it has no model") as e:
        reg.resolve(20)
    assert "`molremote train -e 10 --all-folds`" in str(e.value) and "`molremote evaluate -e 20`" in str(e.value)
    with pytest.raises(ExperimentError, match="experiment 20 is a blend"):
        reg.resolve(30)
    assert leaf_ids(reg, 20) == [10, 11]


def test_shipped_moa_blends_resolve_and_a_blend_without_its_members_names_the_missing_id(project):
    """0290-0292 load with the shipped members (0200, 0203, 0210, 0220, 0230, 0231); copied into a project without
    those members, a blend names its file and the missing id."""
    shipped = Registry(ROOT / "experiments")
    assert {38, 39, 290, 291, 292, 293} <= set(shipped.ids())
    assert shipped.blend(291).member_kinds == ("blend", "experiment", "experiment", "experiment")
    shutil.copy(ROOT / "experiments" / "0291_moa_1st_blend_winning.py", project / "experiments")
    with pytest.raises(ExperimentError, match=r"member experiment 290 not found") as e:
        Registry().blend(291)
    assert e.value.file.endswith("experiments/0291_moa_1st_blend_winning.py")


def test_the_winning_moa_blend_has_the_write_ups_leaf_weights(project):
    """0290/0291 over stand-ins for the member experiments (the blends' weights, not the members, are under test)."""
    exp = project / "experiments"
    shutil.copy(ROOT / "experiments" / "0200_moa_1st_simple_nn.py", exp)
    for i in (203, 210, 220, 230, 231):
        write_experiment(project, f"{i:04d}_standin.py", f'EXPERIMENT = derive(200, training={{"seed": {i}}})\n')
    for f in (ROOT / "experiments").glob("029[012]_*.py"):
        shutil.copy(f, exp)
    reg = Registry()
    leaves = fixed_leaf_weights(reg, 291)
    want = {203: 0.9 * 0.37, 200: 0.9 * 0.10 + 0.09, 230: 0.9 * 0.18, 231: 0.9 * 0.15, 210: 0.10, 220: 0.09}
    assert leaves == pytest.approx(want, abs=1e-12) and sum(leaves.values()) == pytest.approx(1.0)
    assert reg.blend(291).member_kinds == ("blend", "experiment", "experiment", "experiment")
    best = reg.blend(292)
    assert best.auto and fixed_leaf_weights(reg, 292) is None and len(best.members) == 6
