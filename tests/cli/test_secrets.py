"""Issue 11 item 3 through the CLI entry point: a password or token inside a URL or destination never
reaches the screen, a rendered kernel/script or a job record; a bundle never ships a token-shaped file.

Tokens are assembled at run time so this file holds none (the project's own bundle is scanned)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HF = "hf_" + "QxZ7rT2mN9vB4kL1pW8sY3dF6gH0jA5cE2uR"
PASSWORD = "hunter" + "2xyz"


def molremote(tmp_path: Path, *args: str, project: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    base = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MOLREMOTE_PROJECT": str(project),
        "MOLREMOTE_CONFIG": str(tmp_path / "molremote.toml"),
        "MOLREMOTE_JOBS": str(tmp_path / "jobs"),
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "molremote", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=project,
    )


def assert_hidden(r: subprocess.CompletedProcess, *values: str) -> None:
    for v in values:
        assert v not in r.stdout and v not in r.stderr, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize(
    "toml, key, kind",
    [
        (f'[store]\nurl = "hf://me/runs?token={HF}"\n', "store.url", "Hugging Face token"),
        (f'[store]\nurl = "https://me:{PASSWORD}@example.org/store"\n', "store.url", "password in a URL"),
        (
            f'[ssh.hosts.gpubox]\ndestination = "me:{PASSWORD}@gpubox"\n',
            "ssh.hosts.gpubox.destination",
            "password in an ssh destination",
        ),
        (
            f'[slurm.clusters.hpc]\nlogin = "me:{PASSWORD}@login.hpc"\n',
            "slurm.clusters.hpc.login",
            "password in an ssh destination",
        ),
    ],
)
@pytest.mark.parametrize("command", [["config"], ["doctor", "--no-cuda"]])
def test_config_and_doctor_refuse_and_never_print_a_secret_in_the_file(tmp_path, toml, key, kind, command):
    (tmp_path / "molremote.toml").write_text(toml)
    r = molremote(tmp_path, *command)
    assert r.returncode == 8, (r.stdout, r.stderr)  # ConfigError
    assert f"'{key}'" in r.stderr and kind in r.stderr and "***" in r.stderr and "molremote.toml" in r.stderr
    assert_hidden(r, HF[3:], PASSWORD)


def test_env_override_with_a_token_is_refused_masked(tmp_path):
    (tmp_path / "molremote.toml").write_text("")
    r = molremote(tmp_path, "config", MOLREMOTE_STORE=f"hf://me/runs?token={HF}")
    assert r.returncode == 8 and "environment variable MOLREMOTE_STORE" in r.stderr
    assert "hf://me/runs?token=***" in r.stderr
    assert_hidden(r, HF[3:])


def test_config_shows_plain_settings(tmp_path):
    (tmp_path / "molremote.toml").write_text(
        '[store]\nurl = "hf://me/runs"\n[ssh.hosts.gpubox]\ndestination = "me@gpubox"\n'
    )
    r = molremote(tmp_path, "config")
    assert r.returncode == 0, r.stderr
    assert "hf://me/runs" in r.stdout and "me@gpubox" in r.stdout


def test_ssh_destination_with_password_never_reaches_a_script(tmp_path):
    (tmp_path / "molremote.toml").write_text("")
    r = molremote(tmp_path, "remote", "-e", "1", "--ssh", f"me:{PASSWORD}@gpubox", "--dry-run")
    assert r.returncode == 6, (r.stdout, r.stderr)  # BackendError, before anything is rendered or recorded
    assert "'host'" in r.stderr and "me:***@gpubox" in r.stderr and "ssh-copy-id" in r.stderr
    assert_hidden(r, PASSWORD)
    assert not (tmp_path / "jobs").exists()


def test_kaggle_store_with_token_never_reaches_the_kernel(tmp_path):
    (tmp_path / "molremote.toml").write_text("")
    r = molremote(
        tmp_path, "remote", "-e", "1", "--kaggle", "--dry-run", MOLREMOTE_KAGGLE_STORE=f"hf://me/runs?token={HF}"
    )
    assert r.returncode == 6, (r.stdout, r.stderr)
    assert "'store'" in r.stderr and "hf://me/runs?token=***" in r.stderr
    assert_hidden(r, HF[3:])
    # without the token the kernel renders, with the store
    r = molremote(tmp_path, "remote", "-e", "1", "--kaggle", "--dry-run", MOLREMOTE_KAGGLE_STORE="hf://me/runs")
    assert r.returncode == 0, r.stderr
    assert "'store': 'hf://me/runs'" in r.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git project with one experiment, as a user's would be."""
    p = tmp_path / "proj"
    (p / "experiments").mkdir(parents=True)
    shutil.copy(next((ROOT / "experiments").glob("0001_*.py")), p / "experiments")
    (p / "pyproject.toml").write_text(
        '[project]\nname = "p"\ndependencies = []\n[project.optional-dependencies]\ntrain = []\n'
    )

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=p, check=True, capture_output=True
        )

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    return p


@pytest.mark.parametrize("tracked", [True, False])
def test_bundle_refuses_a_token_in_any_file_naming_file_and_line(tmp_path, project, tracked):
    """The token is not in the environment: the shape alone refuses it (tracked or untracked file)."""
    (project / "notes.md").write_text("# notes\n\nmy token: " + HF + "\n")
    if tracked:
        subprocess.run(["git", "add", "notes.md"], cwd=project, check=True)
    r = molremote(
        tmp_path, "remote", "-e", "1", "--ssh", "me@gpubox", "--dry-run", project=project, MOLREMOTE_CONFIG=""
    )
    assert r.returncode == 6, (r.stdout, r.stderr)
    assert "refusing to bundle notes.md: line 3 holds a Hugging Face token" in r.stderr
    assert '"notes.md:3"' in r.stderr and "allow_secrets" in r.stderr
    assert_hidden(r, HF[3:])
    assert not list((project / ".molremote").glob("bundles/*.tar.gz"))
    # an explicit allow-list entry in molremote.toml ships it (a false positive, by the user's word)
    (project / "molremote.toml").write_text('[bundle]\nallow_secrets = ["notes.md:3"]\n')
    r = molremote(
        tmp_path, "remote", "-e", "1", "--ssh", "me@gpubox", "--dry-run", project=project, MOLREMOTE_CONFIG=""
    )
    assert r.returncode == 0, r.stderr
