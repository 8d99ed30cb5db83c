"""The wheel alone carries what a user needs: build it, install it (not editable) in a fresh venv, and render a
Kaggle kernel, an ssh launcher and an sbatch script with `molremote remote ... --dry-run` from that install.

The fresh venv gets the project's dependencies through a .pth line naming this venv's site-packages (a plain
directory on sys.path: the editable install's finder there is not activated), so nothing is downloaded and
`molremote` can only come from the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIP = [sys.executable, "-m", "pip"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # only what the sdist would hold: the package, pyproject.toml, README
    shutil.copytree(ROOT / "molremote", src / "molremote", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(tmp / "dist"), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp / "dist").glob("molremote-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for t in ("kaggle_kernel.py", "ssh_launch.sh", "slurm.sbatch", "slurm_ddp.sh", "remote_common.sh"):
        assert f"molremote/templates/{t}" in names, t
    assert any(n.startswith("molremote/demo_data/belka/") for n in names)
    assert any(n.startswith("molremote/demo_data/text2mol/") for n in names)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run(
        [*PIP, "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "_molremote_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv, src


def molremote(venv: Path, project: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "MOLREMOTE_PROJECT": str(project),
        "MOLREMOTE_CONFIG": str(home / "molremote.toml"),
        "MOLREMOTE_JOBS": str(home / "jobs"),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [str(venv / "bin" / "molremote"), *args], env=env, capture_output=True, text=True, timeout=180, cwd=home
    )


@pytest.mark.integration
@pytest.mark.slow
def test_wheel_install_renders_every_backend(installed, tmp_path):
    # the project: a copy of the source (ssh and slurm ship it and read its pyproject's dependency sets), plus
    # an experiment; the command itself runs from the wheel's install
    venv, src = installed
    project = tmp_path / "proj"
    shutil.copytree(src, project)
    (project / "experiments").mkdir()
    (project / "experiments" / "0007_belka_small.py").write_text(
        "from molremote.experiments import experiment\n"
        "EXPERIMENT = experiment(task='belka', model={'name': 'cnn1d', 'embed_dim': 8}, folds={'n_folds': 3})\n"
    )
    for cmd in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "exp"]):
        subprocess.run(["git", *cmd], cwd=project, check=True, capture_output=True)
    home = tmp_path / "home"
    home.mkdir()
    (home / "molremote.toml").write_text("")
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import molremote; print(molremote.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=home,
    ).stdout
    assert where.startswith(str(venv)), where  # the wheel's copy, not the source tree
    r = molremote(venv, project, home, "remote", "-e", "7", "--kaggle", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "--- molremote_kernel.py" in r.stdout and "--- kernel-metadata.json" in r.stdout
    assert '"id": "YOUR_KAGGLE_USERNAME/mr-0007-f0-' in r.stdout
    r = molremote(venv, project, home, "remote", "-e", "7", "--ssh", "me@box", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "--- launch.sh" in r.stdout and "bash launch.sh start" in r.stdout
    r = molremote(venv, project, home, "remote", "-e", "7", "--slurm", "--all-folds", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "--- job.sbatch" in r.stdout and "#SBATCH --array=0,1,2" in r.stdout
