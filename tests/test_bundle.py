"""molremote/bundle.py: reproducible code snapshots of a git working tree."""

import hashlib
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from molremote.bundle import make_bundle, read_bundle_info
from molremote.errors import BackendError


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "proj"
    (r / "pkg").mkdir(parents=True)
    (r / "pkg" / "mod.py").write_text("X = 1\n")
    (r / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (r / "run.sh").chmod(0o775)
    (r / "pyproject.toml").write_text(
        '[project]\nname="p"\ndependencies=["numpy>=1"]\n[project.optional-dependencies]\ntrain=["torch"]\n'
    )
    (r / ".gitignore").write_text("ignored.txt\n")
    git(r, "init", "-q")
    git(r, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git(r, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    return r


def members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as t:
        return {m.name: m for m in t.getmembers()}


def test_same_tree_same_hash_and_normalised_entries(repo, tmp_path):
    a = make_bundle(repo, tmp_path / "out1")
    # touching files (new mtimes) and bundling elsewhere must not change a byte
    for p in repo.rglob("*.py"):
        p.touch()
    b = make_bundle(repo, tmp_path / "out2")
    assert a.sha256 == b.sha256 == hashlib.sha256(b.path.read_bytes()).hexdigest()
    assert a.path.name == f"bundle-{a.sha256[:16]}.tar.gz"
    assert a.commit == git(repo, "rev-parse", "HEAD").strip() and not a.dirty
    m = members(a.path)
    assert list(m) == sorted(m)  # sorted entries
    assert {"pkg/mod.py", "run.sh", ".gitignore", "pyproject.toml", ".molremote/bundle.json"} == set(m)
    assert {(x.mtime, x.uid, x.gid, x.uname, x.gname) for x in m.values()} == {(315532800, 0, 0, "", "")}
    assert m["run.sh"].mode == 0o755 and m["pkg/mod.py"].mode == 0o644
    assert a.path.read_bytes()[4:8] == b"\0\0\0\0"  # gzip header mtime
    info = read_bundle_info(a.path)
    assert info["commit"] == a.commit and info["dirty"] is False and info["content_hash"] == a.content_hash
    assert a.requirements(["train"]) == ["numpy>=1", "torch"]
    with pytest.raises(BackendError, match="no optional dependency set 'gpu'"):
        a.requirements(["gpu"])


def test_dirty_untracked_included_ignored_excluded(repo, tmp_path):
    clean = make_bundle(repo, tmp_path / "o")
    (repo / "pkg" / "mod.py").write_text("X = 2\n")
    (repo / "new.py").write_text("Y = 1\n")
    (repo / "ignored.txt").write_text("nope")
    for d in ("runs/0001_a", "data", ".venv/bin", "wandb", "pkg/__pycache__"):
        (repo / d).mkdir(parents=True, exist_ok=True)
        (repo / d / "f.txt").write_text("x")
    b = make_bundle(repo, tmp_path / "o")
    assert b.dirty and b.sha256 != clean.sha256
    assert set(b.dirty_files) == {"pkg/mod.py", "new.py"}
    m = members(b.path)
    assert "new.py" in m and "ignored.txt" not in m
    assert not [n for n in m if n.split("/")[0] in ("runs", "data", ".venv", "wandb", ".git")]
    assert "pkg/__pycache__/f.txt" not in m
    with tarfile.open(b.path, "r:gz") as t:
        assert t.extractfile("pkg/mod.py").read() == b"X = 2\n"  # the working tree as it is
        assert b"+X = 2" in t.extractfile(".molremote/git-diff.patch").read()
    assert read_bundle_info(b.path)["dirty_files"] == ["new.py", "pkg/mod.py"]


def test_require_clean_names_dirty_files(repo, tmp_path):
    (repo / "pkg" / "mod.py").write_text("X = 3\n")
    with pytest.raises(BackendError, match=r"uncommitted changes \(pkg/mod.py\)"):
        make_bundle(repo, tmp_path / "o", require_clean=True)
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


@pytest.mark.parametrize("name", [".env", "kaggle.json", "server.pem", "id_rsa", "conf/.netrc"])
def test_secret_looking_files_refused(repo, tmp_path, name):
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text("whatever")
    with pytest.raises(BackendError, match=f"refusing to bundle {name}"):
        make_bundle(repo, tmp_path / "o")


def test_file_with_token_value_refused(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "wb-0123456789abcdef")
    (repo / "pkg" / "cfg.py").write_text('KEY = "wb-0123456789abcdef"\n')
    with pytest.raises(BackendError, match=r"refusing to bundle pkg/cfg.py: it contains the value of \$WANDB_API_KEY"):
        make_bundle(repo, tmp_path / "o")
    # the message never contains the value itself
    with pytest.raises(BackendError) as e:
        make_bundle(repo, tmp_path / "o")
    assert "pkg/cfg.py" in str(e.value) and "0123456789abcdef" not in str(e.value)
    # an ignored file holding the token is simply not shipped
    (repo / "pkg" / "cfg.py").rename(repo / "ignored.txt")
    assert "ignored.txt" not in members(make_bundle(repo, tmp_path / "o").path)


def test_not_a_git_repo(tmp_path):
    (tmp_path / "a.py").write_text("")
    with pytest.raises(BackendError, match="not inside a git repository"):
        make_bundle(tmp_path, tmp_path / "o")


def test_subfolder_of_a_repo_bundles_that_folder_only(repo, tmp_path):
    b = make_bundle(repo / "pkg", tmp_path / "o")
    assert set(members(b.path)) == {"mod.py", ".molremote/bundle.json"}


HF = "hf_" + "QxZ7rT2mN9vB4kL1pW8sY3dF6gH0jA5cE2uR"  # assembled: this file must scan clean itself


@pytest.mark.parametrize(
    "name, text, line, kind",
    [
        ("pkg/conf.py", "A = 1\nTOKEN = '" + HF + "'\n", 2, "Hugging Face token"),
        (
            "molremote.toml",
            '[ssh.hosts.box]\ndestination = "me:' + 'pw1234@gpubox"\n',
            2,
            "password in an ssh destination",
        ),
        (
            "deploy/key",
            "x\n-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n",
            2,
            "private key",
        ),
    ],
)
def test_token_shaped_content_refused_without_env(repo, tmp_path, monkeypatch, name, text, line, kind):
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "WANDB_API_KEY", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    with pytest.raises(BackendError, match=f"refusing to bundle {name}: line {line} holds a {kind}") as e:
        make_bundle(repo, tmp_path / "o", allow_secrets=[])
    assert HF[3:] not in str(e.value) and "pw1234" not in str(e.value)
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*.tar.gz"))
    info = make_bundle(repo, tmp_path / "o", allow_secrets=[f"{name}:{line}"])  # the allow-list ships it
    assert name in members(info.path)


def test_token_in_a_deleted_line_of_the_diff_refused(repo, tmp_path):
    """Removing a committed token without committing the removal would still ship it (in git-diff.patch)."""
    (repo / "pkg" / "mod.py").write_text("X = 1\nT = '" + HF + "'\n")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "oops")
    with pytest.raises(BackendError, match="refusing to bundle pkg/mod.py: line 2"):
        make_bundle(repo, tmp_path / "o", allow_secrets=[])
    (repo / "pkg" / "mod.py").write_text("X = 1\n")  # fixed in the tree, not yet committed
    with pytest.raises(
        BackendError,
        match=r"uncommitted diff .* holds a Hugging Face token in a changed or "
        r"deleted line of pkg/mod.py",
    ) as e:
        make_bundle(repo, tmp_path / "o", allow_secrets=[])
    assert HF[3:] not in str(e.value)
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "fix")
    make_bundle(repo, tmp_path / "o", allow_secrets=[])


def test_allow_list_read_from_the_project_settings(repo, tmp_path, monkeypatch):
    monkeypatch.delenv("MOLREMOTE_CONFIG", raising=False)
    (repo / "fixtures").mkdir()
    (repo / "fixtures" / "fake.txt").write_text(HF + "\n")
    with pytest.raises(BackendError, match="fixtures/fake.txt: line 1"):
        make_bundle(repo, tmp_path / "o")
    (repo / "molremote.toml").write_text('[bundle]\nallow_secrets = ["fixtures/*"]\n')
    assert "fixtures/fake.txt" in members(make_bundle(repo, tmp_path / "o").path)


def test_bundle_file_mode_follows_the_umask(repo, tmp_path):
    old = os.umask(0o022)
    try:
        info = make_bundle(repo, tmp_path / "o", allow_secrets=[])
    finally:
        os.umask(old)
    assert stat.S_IMODE(info.path.stat().st_mode) == 0o644  # readable by the other users of a shared store
