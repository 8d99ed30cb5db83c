"""`molremote remote --ssh/--slurm`: option plumbing from molremote.toml and the command line into the
rendered job (dry run), and the refusals. Real launches are covered in tests/backends/test_ssh.py and
test_slurm.py against the loopback sshd and SLURM."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def molremote(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MOLREMOTE_PROJECT": str(ROOT),
        "MOLREMOTE_CONFIG": str(tmp_path / "molremote.toml"),
        "MOLREMOTE_JOBS": str(tmp_path / "jobs"),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "molremote", *args], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_slurm_dry_run_takes_cluster_settings_and_overrides(tmp_path):
    (tmp_path / "molremote.toml").write_text(
        '[slurm.clusters.hpc]\nlogin = "local"\npartition = "gpu"\naccount = "proj42"\nextra_sbatch = ["--qos=long"]\n'
    )
    r = molremote(
        tmp_path,
        "remote",
        "-e",
        "1",
        "--slurm",
        "--cluster",
        "hpc",
        "--all-folds",
        "--time",
        "02:00:00",
        "--max-time",
        "1h50m",
        "--dry-run",
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --account=proj42",
        "#SBATCH --time=02:00:00",
        "#SBATCH --qos=long",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:USR1@",
    ):
        assert line in out, line
    assert "--max-time 1h50m" in out and "--experiment-json" in out
    assert not (tmp_path / "jobs").exists()  # a dry run records no job


def test_slurm_dry_run_nodes_and_gpus(tmp_path):
    """--nodes 2 --gpus 2: one srun task per process, 2 per node; experiment 1 is pinned to the CPU, so --gpus
    counts gloo processes and no GPUs are requested."""
    (tmp_path / "molremote.toml").write_text("")
    r = molremote(tmp_path, "remote", "-e", "1", "--slurm", "--nodes", "2", "--gpus", "2", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "#SBATCH --nodes=2" in r.stdout and "#SBATCH --ntasks-per-node=2" in r.stdout
    assert 'srun --nodes="$SLURM_NNODES" --ntasks-per-node=2 ' in r.stdout and "bash -c rank_main &" in r.stdout
    assert "gpus-per-node" not in r.stdout and "--gres" not in r.stdout
    r = molremote(tmp_path, "remote", "-e", "1", "--ssh", "box", "--nodes", "2", "--dry-run")
    assert r.returncode == 2 and "--nodes 2: needs --slurm" in r.stderr
    r = molremote(tmp_path, "remote", "-e", "1", "--slurm", "--nodes", "0", "--dry-run")
    assert r.returncode == 2 and "--nodes 0: must be at least 1" in r.stderr


def test_ssh_dry_run_uses_named_host(tmp_path):
    (tmp_path / "molremote.toml").write_text(
        '[ssh.hosts.box]\ndestination = "me@box.example.org"\nworkdir = "/scratch/me/mr"\n'
        'venv = "/opt/venv"\ngpus = 2\n'
    )
    r = molremote(tmp_path, "remote", "-e", "1", "--ssh", "box", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "--no-progress --gpus 2" in r.stdout  # host's 2 GPUs -> `train --gpus 2` (torchrun + DDP)
    assert "/opt/venv" in r.stdout


def test_refusals(tmp_path):
    (tmp_path / "molremote.toml").write_text("")
    r = molremote(tmp_path, "remote", "-e", "1")
    assert r.returncode == 2 and "choose exactly one" in r.stderr
    r = molremote(tmp_path, "remote", "-e", "1", "--slurm", "--cluster", "nope", "--dry-run")
    assert r.returncode == 2 and "unknown SLURM cluster 'nope'" in r.stderr
    r = molremote(tmp_path, "remote", "-e", "1", "--ssh", "box", "--max-time", "soon", "--dry-run")
    assert r.returncode == 2 and "--max-time" in r.stderr
