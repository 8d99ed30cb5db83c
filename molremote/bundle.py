"""The code snapshot shipped to a backend: a reproducible tar.gz of the project's working tree.

Contents: every file git tracks or would track (untracked but not ignored), as it is on disk now, so a
dirty tree runs exactly what the user sees (and is flagged dirty). Never shipped: `.git`, run folders,
data, virtual environments, W&B folders. Refused, naming the file (and line): files named like credentials
(`.env`, `kaggle.json`, keys, `.netrc`), files and uncommitted diffs holding anything token-shaped
(`molremote.secrets`: Hugging Face, Kaggle, W&B, GitHub, AWS, private keys, passwords or tokens in URLs and
ssh destinations) whether or not the value is in this environment, and files holding the value of a token
set in this environment. False positives go on the allow-list `[bundle] allow_secrets` in molremote.toml
("path:line", a path or a glob).

The archive is reproducible (sorted entries, fixed mtime/uid/gid/owner names, modes normalised to 644/755,
gzip header mtime 0), so the same tree gives the same sha256 on any machine and at any time. Inside it,
`.molremote/bundle.json` records commit, dirty flag, dirty files and a content hash; remote launchers point
`MOLREMOTE_BUNDLE_INFO` at it and export `MOLREMOTE_BUNDLE_SHA256` (the archive hash) so run manifests
can record `code {commit, dirty, bundle_hash}`.

Hand-written tar writing (rather than `git archive`) because `git archive` only sees commits, not the
working tree, untracked files or the dirty diff, and its output is not stable across git versions.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import stat
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from . import secrets
from .errors import BackendError
from .fsutil import write_bytes

BUNDLE_INFO_PATH = ".molremote/bundle.json"
DIFF_PATH = ".molremote/git-diff.patch"
# Fixed entry mtime: 1980-01-01 (the zip epoch; some tools treat 0 as "no time").
FIXED_MTIME = 315532800
# Excluded wherever they appear (path components).
EXCLUDED_DIRS_ANYWHERE = {
    ".git",
    ".venv",
    "venv",
    "wandb",
    "__pycache__",
    ".molremote",
    ".pytest_cache",
    ".ipynb_checkpoints",
    ".mypy_cache",
    ".ruff_cache",
}
# Excluded only at the project root: run folders and data are big and travel through the store.
EXCLUDED_DIRS_AT_ROOT = {"runs", "data"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
# A file this big is almost certainly data or a checkpoint, not code: refuse rather than ship it to every job.
MAX_FILE_MB = 50.0


@dataclass(frozen=True)
class BundleInfo:
    path: Path
    sha256: str  # of the archive file: the bundle's identity (manifest code.bundle_hash)
    commit: str | None
    dirty: bool
    files: int
    size: int  # archive bytes
    content_hash: str = ""  # over (path, mode, content) of the shipped files; also in bundle.json
    dirty_files: tuple[str, ...] = ()
    # pyproject dependency sets: {"": [base deps], "<extra>": [...]}; backends key remote venvs on them
    dependencies: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        d["dirty_files"] = list(self.dirty_files)
        return d

    @classmethod
    def from_json(cls, d: dict) -> BundleInfo:
        d = dict(d)
        d["path"] = Path(d["path"])
        d["dirty_files"] = tuple(d.get("dirty_files", ()))
        return cls(**d)

    def requirements(self, extras: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Requirement lines for the base dependencies plus `extras` (unknown extra: BackendError)."""
        out = list(self.dependencies.get("", []))
        for e in extras:
            if e not in self.dependencies:
                known = sorted(k for k in self.dependencies if k)
                raise BackendError(f"pyproject.toml has no optional dependency set '{e}' (known: {known})")
            out += self.dependencies[e]
        return out


def _git_repo(root: Path):
    try:
        import git  # gitpython: lazy, only commands that bundle need it
    except ImportError as e:  # pragma: no cover - dependency of the 'remote' extra
        raise BackendError("bundling code needs gitpython: pip install 'molremote[remote]'") from e
    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as e:
        raise BackendError(
            f"{root} is not inside a git repository: the code shipped to a backend is "
            f"taken from git (run 'git init' and commit)"
        ) from e


def _git_in(root: Path):
    """A git command runner whose working directory is `root` (paths come back relative to it)."""
    import git

    return git.Git(str(root))


def _excluded(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    if parts[0] in EXCLUDED_DIRS_AT_ROOT and len(parts) > 1:
        return True
    if any(p in EXCLUDED_DIRS_ANYWHERE for p in parts[:-1]) or parts[-1] in EXCLUDED_DIRS_ANYWHERE:
        return True
    return rel.endswith(EXCLUDED_SUFFIXES)


def _z_list(out: str) -> list[str]:
    return [p for p in out.split("\0") if p]


def list_files(root: Path) -> tuple[list[str], list[str], str | None, object]:
    """(shipped files, dirty files, commit, repo): paths relative to `root`, POSIX, sorted."""
    repo = _git_repo(root)
    g = _git_in(root)
    tracked = _z_list(g.ls_files("-z", "--cached"))
    untracked = _z_list(g.ls_files("-z", "--others", "--exclude-standard"))
    has_head = repo.head.is_valid()
    commit = repo.head.commit.hexsha if has_head else None
    files = sorted({p for p in tracked + untracked if not _excluded(p) and os.path.lexists(root / p)})
    if has_head:
        changed = _z_list(g.diff("HEAD", "--name-only", "-z", "--relative"))
    else:
        changed = tracked
    dirty = sorted({p for p in changed + untracked if not _excluded(p)})
    return files, dirty, commit, repo


def _refusal(f: secrets.Finding, what: str = "") -> BackendError:
    return BackendError(
        f"refusing to bundle {what or f.path}: line {f.line} holds a {f.kind} (remove it: jobs "
        f"read secrets from the remote environment; if it is not a secret, add "
        f'"{f.path}:{f.line}" to bundle.allow_secrets in molremote.toml)'
    )


def _check_secrets(root: Path, files: list[str], allow: list[str]) -> None:
    named = [p for p in files if secrets.credentials_file_name(p)]
    if named:
        raise BackendError(
            f"refusing to bundle {named[0]}: it looks like a credentials file "
            f"(add it to .gitignore; jobs read secrets from the remote environment)"
        )
    found = secrets.scan_files(root, files, allow)
    if found:
        more = (
            f" ({len(found) - 1} more finding(s): {', '.join(f.where() for f in found[1:6])})" if len(found) > 1 else ""
        )
        raise BackendError(str(_refusal(found[0])) + more)
    tokens = secrets.env_token_values()
    for rel in files:
        p = root / rel
        if not tokens or p.is_symlink():
            continue
        data = p.read_bytes()
        for var, value in tokens.items():
            if value in data:
                raise BackendError(
                    f"refusing to bundle {rel}: it contains the value of ${var} "
                    f"(remove the token from the file; jobs read it from the remote environment)"
                )


def bundle_allow_list(root: Path) -> list[str]:
    """`[bundle] allow_secrets` of the project's settings (MOLREMOTE_CONFIG or <root>/molremote.toml)."""
    from .settings import config_path, read_settings

    return list(read_settings(config_path(root)).bundle.allow_secrets)


def _check_sizes(root: Path, files: list[str], max_file_mb: float) -> None:
    for rel in files:
        p = root / rel
        if not p.is_symlink() and p.stat().st_size > max_file_mb * 1e6:
            raise BackendError(
                f"refusing to bundle {rel}: {p.stat().st_size / 1e6:.0f} MB is over the "
                f"{max_file_mb:.0f} MB limit for code (put data under data/ or in the store, "
                f"or add it to .gitignore)"
            )


def _tarinfo(name: str, size: int, mode: int, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.type, ti.linkname = size, mode, kind, link
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = FIXED_MTIME, 0, 0, "", ""
    return ti


def _file_mode(p: Path) -> int:
    return 0o755 if p.stat().st_mode & stat.S_IXUSR else 0o644


def _dependencies(root: Path) -> dict[str, list[str]]:
    pp = root / "pyproject.toml"
    if not pp.exists():
        return {}
    try:
        import tomllib
    except ImportError:  # pragma: no cover - python 3.10
        import tomli as tomllib
    try:
        proj = tomllib.loads(pp.read_text()).get("project", {})
    except tomllib.TOMLDecodeError as e:
        raise BackendError(f"{pp}: not valid TOML: {e}") from e
    deps = {"": list(proj.get("dependencies", []))}
    deps.update({k: list(v) for k, v in proj.get("optional-dependencies", {}).items()})
    return deps


def make_bundle(
    project_root: Path | str,
    out_dir: Path | str,
    require_clean: bool = False,
    max_file_mb: float = MAX_FILE_MB,
    allow_secrets: list[str] | None = None,
) -> BundleInfo:
    """Pack the working tree of `project_root` into `out_dir/bundle-<sha16>.tar.gz` (see module doc).
    `allow_secrets`: the secret-scan allow-list (None: `[bundle] allow_secrets` from the settings)."""
    root = Path(project_root).resolve()
    allow = bundle_allow_list(root) if allow_secrets is None else list(allow_secrets)
    files, dirty_files, commit, repo = list_files(root)
    if require_clean and dirty_files:
        shown = ", ".join(dirty_files[:10]) + (f" and {len(dirty_files) - 10} more" if len(dirty_files) > 10 else "")
        raise BackendError(f"working tree has uncommitted changes ({shown}); commit them or drop --require-clean")
    if not files:
        raise BackendError(f"nothing to bundle in {root}: no tracked or untracked-not-ignored files")
    _check_secrets(root, files, allow)
    _check_sizes(root, files, max_file_mb)

    entries: list[tuple[tarfile.TarInfo, bytes | None]] = []
    content = hashlib.sha256()
    for rel in files:
        p = root / rel
        if p.is_symlink():
            target = os.readlink(p)
            entries.append((_tarinfo(rel, 0, 0o777, tarfile.SYMTYPE, target), None))
            content.update(f"L {rel}\0{target}\n".encode())
            continue
        data = p.read_bytes()
        mode = _file_mode(p)
        entries.append((_tarinfo(rel, len(data), mode), data))
        content.update(f"F {rel}\0{mode:o}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    extra: list[tuple[str, bytes]] = []
    if commit and dirty_files:
        diff = _git_in(root).execute(
            ["git", "diff", "HEAD", "--binary", "--relative"], strip_newline_in_stdout=False, stdout_as_string=False
        )
        _check_diff_secrets(diff, allow)
        extra.append((DIFF_PATH, diff))
    info = {
        "commit": commit,
        "dirty": bool(dirty_files),
        "dirty_files": dirty_files,
        "content_hash": content.hexdigest(),
        "files": len(files),
    }
    extra.append((BUNDLE_INFO_PATH, (json.dumps(info, indent=1, sort_keys=True) + "\n").encode()))
    entries += [(_tarinfo(name, len(data), 0o644), data) for name, data in extra]

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    # gzip header: empty file name and mtime 0, so the archive bytes depend on the contents only
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for ti, body in sorted(entries, key=lambda e: e[0].name):
                tar.addfile(ti, io.BytesIO(body) if body is not None else None)
    blob = buf.getvalue()
    sha = hashlib.sha256(blob).hexdigest()
    path = out / f"bundle-{sha[:16]}.tar.gz"
    if not path.exists():
        write_bytes(path, blob)
    return BundleInfo(
        path=path,
        sha256=sha,
        commit=commit,
        dirty=bool(dirty_files),
        files=len(files),
        size=len(blob),
        content_hash=str(info["content_hash"]),
        dirty_files=tuple(dirty_files),
        dependencies=_dependencies(root),
    )


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)")


def _check_diff_secrets(diff: bytes, allow: list[str]) -> None:
    """Secrets in the shipped diff: its added lines are in the files (an allow-list "path:line" entry covers
    them by their line in the file); its removed lines are not, so only a path or glob entry covers those."""
    rel, new_line = "?", 0
    for line in diff.decode("latin-1").split("\n"):
        if line.startswith("diff --git a/"):
            rel = line.split(" b/", 1)[-1]
            continue
        if m := _HUNK.match(line):
            new_line = int(m.group(1)) - 1
            continue
        if not line.startswith("-"):
            new_line += 1
        found = secrets.find(line)
        where = new_line if line.startswith("+") else 0
        if found and not secrets.allowed(secrets.Finding(found[0].kind, where, 0, rel), allow):
            raise BackendError(
                f"refusing to bundle: the uncommitted diff ({DIFF_PATH}) holds a {found[0].kind} in "
                f"a changed or deleted line of {rel} (the diff carries the old text too: commit "
                f"the change first)"
            )
    for var, value in secrets.env_token_values().items():
        if value in diff:
            raise BackendError(
                f"refusing to bundle: the uncommitted diff ({DIFF_PATH}) contains the value "
                f"of ${var} (a file that held it was changed or deleted; commit first)"
            )


def read_bundle_info(path: Path | str) -> dict:
    """The `.molremote/bundle.json` of an archive (for checks and `molremote show`)."""
    with tarfile.open(path, "r:gz") as tar:
        f = tar.extractfile(BUNDLE_INFO_PATH)
        if f is None:  # pragma: no cover - defensive
            raise BackendError(f"{path}: no {BUNDLE_INFO_PATH} inside; not a molremote bundle")
        return json.loads(f.read())
