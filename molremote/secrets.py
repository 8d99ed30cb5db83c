"""The one place that knows what a secret looks like: find it, mask it for display, scan files for it.

    find(text)          -> [Finding(kind, line, column)]   token-shaped values and credentials in URLs
    mask(text)          -> the text with every secret part replaced by "***" (prefixes such as hf_ kept)
    redact(obj)         -> a nested dict/list with strings masked and secret-named keys' values "***"
    secret_key(name)    -> whether a setting/config key name looks like it holds a secret
    scan_files(root, files, allow) -> findings in files (path, line), less those on the allow-list
    credentials_file_name(rel) / env_token_values()  -> credential file names; this environment's token values

What counts (at least): Hugging Face (hf_...), Kaggle (KGAT_..., the 32-hex key of kaggle.json or
KAGGLE_KEY), W&B (40-hex API keys next to "wandb"), GitHub (ghp_/gho_/ghu_/ghs_/ghr_..., github_pat_...),
AWS (AKIA.../ASIA... key ids, 40-character secret keys next to "aws..secret"), private-key blocks, passwords
in URLs (`scheme://user:<password>@host`), token-like query parameters (`?token=...`) and passwords in ssh
destinations (`me:<password>@gpubox`). Values that are obviously placeholders (`***`, `...`, `$VAR`,
`${VAR}`, `<token>`) are not secrets.

Used by settings (refuse secrets in molremote.toml and overrides), bundle (refuse files holding secrets),
tracking (W&B config), doctor / config / job records (mask what is shown or stored). No dependencies.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MASK = "***"


@dataclass(frozen=True)
class _Pattern:
    kind: str
    regex: re.Pattern[str]
    keep: int = 0  # characters of the secret group kept before the mask (a known, harmless prefix)
    placeholders_ok: bool = False  # a placeholder in the secret group is not a finding (URLs, destinations)
    # Literal texts one of which any match contains (lower case): a text without any is skipped unsearched,
    # which keeps scanning a whole project to a fraction of a second.
    needles: tuple[str, ...] = ()


def _p(kind: str, pattern: str, needles: tuple[str, ...], keep: int = 0, placeholders_ok: bool = False) -> _Pattern:
    return _Pattern(kind, re.compile(pattern), keep, placeholders_ok, needles)


# Each pattern's group `s` is the secret itself (what mask() replaces). Lengths are the real formats'
# (Hugging Face: hf_ + 34 letters; GitHub classic: 36; AWS key id: 20; W&B and AWS secret: 40) with room,
# and word boundaries so that identifiers such as `hf_token_source` are not tokens.
PATTERNS: tuple[_Pattern, ...] = (
    _p("Hugging Face token", r"(?<![A-Za-z0-9_])(?P<s>hf_[A-Za-z0-9]{30,})(?![A-Za-z0-9_])", ("hf_",), keep=3),
    _p("Kaggle API token", r"(?<![A-Za-z0-9_])(?P<s>KGAT_[A-Za-z0-9]{16,})(?![A-Za-z0-9_])", ("kgat_",), keep=5),
    _p(
        "Kaggle API key",
        r"""(?i)(?:"key"|KAGGLE_KEY)["']?\s*[:=]\s*["']?(?P<s>[0-9a-f]{32})(?![0-9a-f])""",
        ('"key"', "kaggle_key"),
    ),
    _p(
        "W&B API key",
        r"(?i)(?:wandb|api\.wandb\.ai)[^\n]{0,80}?(?<![0-9a-f])(?P<s>[0-9a-f]{40})(?![0-9a-f])",
        ("wandb",),
    ),
    _p(
        "GitHub token",
        r"(?<![A-Za-z0-9_])(?P<s>gh[pousr]_[A-Za-z0-9]{36,})(?![A-Za-z0-9_])",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        keep=4,
    ),
    _p(
        "GitHub token",
        r"(?<![A-Za-z0-9_])(?P<s>github_pat_[A-Za-z0-9_]{40,})(?![A-Za-z0-9_])",
        ("github_pat_",),
        keep=11,
    ),
    _p("AWS access key id", r"(?<![A-Z0-9])(?P<s>(?:AKIA|ASIA)[0-9A-Z]{16})(?![A-Z0-9])", ("akia", "asia"), keep=4),
    _p(
        "AWS secret access key",
        r"""(?i)aws_?secret_?(?:access_?)?key["']?\s*[:=]\s*["']?"""
        r"""(?P<s>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])""",
        ("secret",),
    ),
    _p(
        "private key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?P<s>[\s\S]*?)(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|$)",
        ("private key",),
    ),
    _p(
        "password in a URL",
        r"""(?i)\b[a-z][a-z0-9+.-]*://[^\s/?#@:'"]*:(?P<s>[^\s/?#@'"]+)@""",
        ("://",),
        placeholders_ok=True,
    ),
    _p(
        "token in a URL",
        r"""(?i)[?&](?:token|access_token|auth|auth_token|api_?key|key|password|passwd|pwd|secret|"""
        r"""sig|signature|private_token)=(?P<s>[^&#\s'"`()<>\[\]]+)""",
        ("token=", "auth=", "key=", "password=", "passwd=", "pwd=", "secret=", "sig=", "signature="),
        placeholders_ok=True,
    ),
    # ssh destinations: ssh never takes a password there; a quoted whole user:<password>@host is one
    _p(
        "password in an ssh destination",
        r"""(?<=["'])[A-Za-z0-9._-]+:(?P<s>[^\s@/:'"]+)@[A-Za-z0-9][A-Za-z0-9.-]*(?=["'])""",
        ("@",),
        placeholders_ok=True,
    ),
)
# A whole value shaped like an ssh destination with a password (settings values, --ssh arguments).
_DESTINATION = _p(
    "password in an ssh destination",
    r"^\s*(?:ssh://)?[^\s@/:]+:(?P<s>[^\s@/]+)@[^\s@]+\s*$",
    ("@",),
    placeholders_ok=True,
)
# In free text shown to users (status details, doctor output), mask any user:pass@host too.
_DESTINATION_IN_TEXT = _p(
    "password in an ssh destination",
    r"(?<![\w/:@.-])[A-Za-z0-9._-]+:(?P<s>[^\s@/:'\"]+)@[A-Za-z0-9][A-Za-z0-9.-]*",
    ("@",),
    placeholders_ok=True,
)

# Key names that hold secrets (settings keys are refused; W&B config keys are dropped).
SECRET_KEY = re.compile(
    r"(token|secret|passw(or)?d|passphrase|api[_-]?key|apikey|credential|^key$|[_-]key$)", re.IGNORECASE
)


def _placeholder(s: str) -> bool:
    s = s.strip()
    return not s or set(s) <= set("*.x…") or s.startswith(("$", "<", "{", "%")) or s.endswith((">", "}"))


@dataclass(frozen=True)
class Finding:
    kind: str  # e.g. "Hugging Face token"
    line: int  # 1-based
    column: int  # 1-based
    path: str | None = None  # relative path, for file findings

    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.path else f"line {self.line}"


def _matches(text: str, patterns: Iterable[_Pattern]) -> Iterable[tuple[_Pattern, re.Match[str]]]:
    lower = text.lower()
    for p in patterns:
        if p.needles and not any(n in lower for n in p.needles):
            continue
        for m in p.regex.finditer(text):
            if p.placeholders_ok and _placeholder(m.group("s")):
                continue
            yield p, m


def find(text: str, *, path: str | None = None) -> list[Finding]:
    """Every secret in `text`, ordered by position (one finding per secret)."""
    seen: set[int] = set()
    out: list[tuple[int, Finding]] = []
    for p, m in _matches(text, PATTERNS):
        pos = m.start("s")
        if pos in seen:
            continue
        seen.add(pos)
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        out.append((pos, Finding(p.kind, line, col, path)))
    return [f for _, f in sorted(out, key=lambda x: x[0])]


def find_in_value(value: str) -> list[Finding]:
    """`find` plus a whole value shaped `user:password@host` (a setting or an ssh destination)."""
    return find(value) + [Finding(p.kind, 1, m.start("s") + 1) for p, m in _matches(value, [_DESTINATION])]


def has_secret(text: str) -> bool:
    return bool(find_in_value(text))


def mask(text: str) -> str:
    """`text` with every secret replaced by "***" (a known prefix such as `hf_` kept): safe to print."""
    if not isinstance(text, str) or not text:
        return text
    spans: list[tuple[int, int, int]] = []  # (start, end, keep)
    for p, m in _matches(text, (*PATTERNS, _DESTINATION_IN_TEXT)):
        spans.append((m.start("s"), m.end("s"), p.keep))
    if not spans:
        return text
    out, pos = [], 0
    for start, end, keep in sorted(spans):
        if start < pos:  # overlapping findings: already masked
            continue
        out.append(text[pos : start + keep] + MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def secret_key(name: str) -> bool:
    return bool(SECRET_KEY.search(str(name)))


def redact(obj: Any, keys: bool = True) -> Any:
    """A copy of a nested dict/list/str with every string masked and (with `keys`) the value of secret-named
    keys "***"."""
    if isinstance(obj, dict):
        return {
            k: (MASK if keys and secret_key(k) and obj[k] not in (None, "", [], {}) else redact(v, keys))
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact(v, keys) for v in obj)
    if isinstance(obj, str):
        return mask(obj)
    return obj


# ------------------------------------------------------------------------------------------------ files
# Names that look like credentials: refused by the bundle (add them to .gitignore), never silently shipped.
CREDENTIAL_FILE_NAMES = (
    ".env",
    ".env.*",
    "kaggle.json",
    "*.pem",
    "id_rsa*",
    "id_ed25519*",
    "id_ecdsa*",
    "id_dsa*",
    ".netrc",
    "_netrc",
    ".git-credentials",
    ".pypirc",
    "credentials.json",
)
CREDENTIAL_FILE_NAMES_ALLOWED = (".env.example", ".env.sample", ".env.template")
# Variables whose values are searched for in shipped files (whatever their shape). Values shorter than
# this are not real tokens (and would give false positives).
TOKEN_ENV_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "WANDB_API_KEY", "KAGGLE_KEY", "KAGGLE_API_TOKEN")
MIN_TOKEN_LEN = 8


def credentials_file_name(rel: str) -> bool:
    """Whether a file's name says it holds credentials (`.env`, `kaggle.json`, `id_rsa`, `.netrc`, ...)."""
    name = Path(rel).name
    if name in CREDENTIAL_FILE_NAMES_ALLOWED:
        return False
    return any(fnmatch.fnmatchcase(name, p) for p in CREDENTIAL_FILE_NAMES)


def env_token_values() -> dict[str, bytes]:
    """{variable: value} of the tokens set in this environment (TOKEN_ENV_VARS), for exact-value search."""
    return {k: v.encode() for k in TOKEN_ENV_VARS if len(v := os.environ.get(k, "").strip()) >= MIN_TOKEN_LEN}


def scan_text(text: str, path: str) -> list[Finding]:
    return find(text, path=path)


def scan_file(path: Path, rel: str | None = None) -> list[Finding]:
    """Findings in one file. Bytes are read as latin-1 (one character per byte) so that a token inside a
    binary file (a pickle, a notebook output) is found too."""
    return find(Path(path).read_bytes().decode("latin-1"), path=rel or str(path))


def allowed(f: Finding, allow: Iterable[str]) -> bool:
    """Whether an allow-list entry covers the finding: `path:line`, `path` or a glob over paths (`tests/*`)."""
    for entry in allow:
        entry = entry.strip()
        if entry == f"{f.path}:{f.line}":
            return True
        if f.path is not None and fnmatch.fnmatchcase(f.path, entry):
            return True
    return False


def scan_files(root: Path, files: Iterable[str], allow: Iterable[str] = ()) -> list[Finding]:
    """Findings in `files` (paths relative to `root`; symlinks are not followed), less the allowed ones."""
    allow = list(allow)
    out: list[Finding] = []
    for rel in files:
        p = Path(root) / rel
        if p.is_symlink() or not p.is_file():
            continue
        out += [f for f in scan_file(p, rel) if not allowed(f, allow)]
    return out


# ------------------------------------------------------------------------------------------ refusals
WHERE_SECRETS_GO = (
    "ssh takes no password in a destination (set up key login: `ssh-copy-id HOST`); tokens reach "
    "jobs from the remote environment (HF_TOKEN, WANDB_API_KEY) or Kaggle Secrets, never from "
    "a URL, an option or a file"
)


def first_secret(obj: Any, prefix: str = "") -> tuple[str, str, str] | None:
    """(dotted key, masked value, kind) of the first string in a nested dict/list holding a secret, else None."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if (hit := first_secret(v, f"{prefix}{k}.")) is not None:
                return hit
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            if (hit := first_secret(v, f"{prefix}{i}.")) is not None:
                return hit
    elif isinstance(obj, str) and (found := find_in_value(obj)):
        return prefix.rstrip("."), mask(obj), found[0].kind
    return None
