"""Usage errors through the real console script: Typer's short usage message and exit 2, never a traceback;
`--version`, shell completion, `--json` on the listing commands; the README's exit-code line matches the one
table in molremote/errors.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from molremote.errors import EXIT_CODES, EXIT_USAGE

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "molremote"  # the installed console script, as a user runs it


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {
        "PATH": f"{SCRIPT.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MOLREMOTE_PROJECT": str(ROOT),
        "MOLREMOTE_CONFIG": str(tmp_path / "molremote.toml"),
        "MOLREMOTE_JOBS": str(tmp_path / "jobs"),
        "COLUMNS": "200",
        "TERM": "dumb",
    }
    return subprocess.run(
        [str(SCRIPT), *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "-e", "abc"], "Invalid value for '-e' / '--experiment'"),
        (["train", "--nonsense"], "No such option: --nonsense"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["remote", "--kaggle"], "Missing option '-e' / '--experiment'"),
        (["show"], "Missing argument 'ID'"),
        (["remote", "-e", "1", "--fold", "x"], "Invalid value for '--fold' / '-f'"),
        (["ls", "--json", "extra"], "Got unexpected extra argument"),
    ],
)
def test_usage_error_is_short_message_and_exit_2(tmp_path, args, message):
    r = run(tmp_path, *args)
    assert r.returncode == EXIT_USAGE == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert "Usage: molremote" in r.stderr and message in r.stderr, r.stderr
    assert "--help' for help" in r.stderr


def test_bare_command_shows_usage_and_exits_2(tmp_path):
    r = run(tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout
    assert "Usage: molremote" in r.stdout + r.stderr and "remote" in r.stdout + r.stderr


def test_version(tmp_path):
    from importlib.metadata import version

    r = run(tmp_path, "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"molremote {version('molremote')}"


def test_install_completion_bash_and_complete(tmp_path):
    r = run(tmp_path, "--install-completion", "bash")
    assert r.returncode == 0, r.stderr
    script = tmp_path / ".bash_completions" / "molremote.sh"
    assert script.is_file() and "_MOLREMOTE_COMPLETE" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()
    # what bash asks the completion script for: the commands starting with "st"
    r = run(tmp_path, env={"_MOLREMOTE_COMPLETE": "complete_bash", "COMP_WORDS": "molremote st", "COMP_CWORD": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["status"], r.stdout


def test_status_json_lists_jobs(tmp_path):
    r = run(tmp_path, "status", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []
    from molremote import jobs

    jobs_dir = tmp_path / "jobs"
    jobs_dir.mkdir()
    rec = jobs.JobRecord(
        job_id="0001_demo-ssh-1",
        backend="ssh",
        experiment="0001_demo",
        experiment_id=1,
        config_hash="abc",
        folds=[0],
        state="complete",
        detail="exit 0",
    )
    (jobs_dir / "0001_demo-ssh-1.json").write_text(json.dumps(rec.to_json()))
    r = run(tmp_path, "status", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [(j["job_id"], j["state"], j["detail"], j["folds"]) for j in out] == [
        ("0001_demo-ssh-1", "complete", "exit 0", [0])
    ]


def test_listing_commands_have_json(tmp_path):
    """Every command that lists things takes --json (checked on its help, so no store or network is needed)."""
    for cmd in ("ls", "status", "runs", "scores", "evaluate", "ensemble"):
        r = run(tmp_path, cmd, "--help")
        assert r.returncode == 0 and "--json" in r.stdout, cmd


def test_library_error_is_one_line_with_its_exit_code(tmp_path):
    r = run(tmp_path, "show", "99999")
    assert r.returncode == 2 and r.stderr.startswith("error: unknown experiment id 99999")
    r = run(tmp_path, "logs", "--job", "nope")
    assert r.returncode == 6 and "no job 'nope'" in r.stderr and "Traceback" not in r.stderr


def test_readme_exit_codes_match_the_table():
    text = (ROOT / "README.md").read_text()
    line = re.search(r"Exit codes: (.*?)\n\n", text, re.S)[1].replace("\n", " ")
    documented = {int(code): what.strip() for code, what in re.findall(r"(\d+) ([^,(]+?)(?: \(.*?\))?(?:,|\.$)", line)}
    assert documented == EXIT_CODES


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--json"],
        ["remote", "-e", "1", "--slurm", "--dry-run"],
        ["remote", "-e", "1", "--kaggle", "--dry-run"],
        ["--version"],
        ["frobnicate"],
    ],
)
def test_no_torch_outside_training(tmp_path, args):
    code = (
        "import sys; from molremote.cli import main\n"
        f"sys.argv = ['molremote', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH', 'torch' in sys.modules, file=sys.stderr)\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MOLREMOTE_PROJECT": str(ROOT),
        "MOLREMOTE_CONFIG": str(tmp_path / "molremote.toml"),
        "MOLREMOTE_JOBS": str(tmp_path / "jobs"),
    }
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "TORCH False" in r.stderr, r.stderr[-2000:]
