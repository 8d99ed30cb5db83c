"""The README's claims, checked against what the code does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import demo_figures  # noqa: E402


def test_readme_demo_table_has_rows_for_the_demo_experiments():
    rows = demo_figures.readme_rows(ROOT / "README.md")
    assert rows[1][:2] == ("belka_demo_cnn1d", "belka_ap")
    assert rows[2][:2] == ("text2mol_demo", "LRAP")
    assert 0 < rows[1][3] < rows[1][2] and 0 < rows[2][3] < rows[2][2]  # baselines below the trained metric
    assert rows[3][:2] == ("moa_demo_mlp", "logloss") and 0 < rows[3][2] < rows[3][3]  # a loss: below its prior
    assert rows[5][:2] == ("affinity_demo_clip", "recall_at_10") and 0 < rows[5][3] < rows[5][2]
    assert rows[4][:2] == ("cafa_demo", "fmax_w") and 0 < rows[4][3] < rows[4][2]  # above the naive baseline
    for i, name in ((33, "moa_demo_tabnet"), (34, "moa_demo_two_heads"), (35, "moa_demo_deepinsight")):
        assert rows[i][:2] == (name, "logloss") and 0 < rows[i][2] < rows[i][3]


@pytest.mark.slow
@pytest.mark.integration
def test_readme_demo_figures_reproduce():
    """Trains the demo experiments (1 to 5, 33, 34, 35) through the CLI and compares metric and baseline with the
    README's table."""
    cp = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "demo_figures.py"),
            "-e",
            "1",
            "-e",
            "2",
            "-e",
            "3",
            *("-e", "4", "-e", "5"),  # CAFA, affinity CLIP
            *("-e", "33", "-e", "34", "-e", "35"),  # the MoA demo models: TabNet, 2-heads ResNet, DeepInsight
            "--check",
            str(ROOT / "README.md"),
        ],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert cp.stdout.count("\n") == 8 and "belka_ap" in cp.stdout and "lrap" in cp.stdout and "logloss" in cp.stdout
    assert "recall_at_10" in cp.stdout and "fmax_w" in cp.stdout
