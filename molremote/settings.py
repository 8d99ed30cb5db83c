"""Project settings: `molremote.toml` at the project root, overridden by environment variables.

    [store]
    url = "hf://datasets/me/molremote-runs"   # or a local folder; absent: <project>/runs

    [wandb]
    project = "molremote"
    entity = "my-team"
    mode = "offline"          # online | offline | disabled (default disabled: metrics.jsonl only)
    dir = "/scratch/wandb"    # absent: each run folder's logs/

    [kaggle]
    default_account = "main"
    [kaggle.accounts.main]
    config_dir = "~/.kaggle"  # where this account's kaggle.json / access_token live
    username = "me"           # optional with a kaggle.json (it names the user); needed with an access_token

    [ssh.hosts.box]
    destination = "me@box.example.org"
    workdir = "~/molremote"
    python = "python3"
    venv = "~/venvs/molremote"
    env = ["HF_TOKEN", "WANDB_API_KEY"]   # names of variables forwarded from the remote login environment
    gpus = 1

    [slurm.clusters.hpc]
    login = "me@login.hpc.example.org"   # or "local" when sbatch runs on this machine
    partition = "gpu"
    account = "proj123"
    workdir = "~/molremote"
    python = "python3"
    extra_sbatch = ["--qos=normal"]

    [bundle]
    allow_secrets = ["tests/fixtures/fake_token.txt:3"]   # scan findings that are not secrets (path:line, path, glob)

Tokens never live in this file: a key that looks like a token, key or password is refused, and so is a value
that holds one (molremote.secrets: token-shaped text, a password in a URL or an ssh destination, a token in a
URL query), here or in an environment override, with a message saying where it belongs (HF_TOKEN or the Hub
token cache, WANDB_API_KEY or ~/.netrc, ~/.kaggle) and the value masked.

Environment overrides (highest precedence first where two name the same setting), see `ENV_OVERRIDES`:
    MOLREMOTE_CONFIG                       path of the settings file (instead of <project>/molremote.toml)
    MOLREMOTE_STORE                        store.url
    MOLREMOTE_WANDB_MODE, WANDB_MODE       wandb.mode (WANDB_MODE's "dryrun" means offline, "run" online)
    MOLREMOTE_WANDB_PROJECT, WANDB_PROJECT wandb.project
    MOLREMOTE_WANDB_ENTITY, WANDB_ENTITY   wandb.entity
    MOLREMOTE_WANDB_DIR                    wandb.dir
    MOLREMOTE_KAGGLE_ACCOUNT               kaggle.default_account
WANDB_DIR is deliberately not an override: offline W&B files live in the run folder's logs/ so they travel
with the run to the store and can be synced from any machine; set wandb.dir to choose otherwise.

This module imports neither torch nor any service client: `molremote config` and `--help` stay fast.
"""

from __future__ import annotations

import difflib
import functools
import netrc
import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import tomllib
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from . import secrets
from .errors import ConfigError
from .project import project_root

CONFIG_FILE = "molremote.toml"


# ------------------------------------------------------------------------------------------------ schema
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Strict):
    url: str | None = None  # None: the local runs folder (molremote.project.runs_dir)


class WandbSettings(_Strict):
    project: str = "molremote"
    entity: str | None = None  # None: the API key's default entity
    mode: Literal["online", "offline", "disabled"] = "disabled"  # fresh machine: no account, no network
    dir: str | None = None  # None: <run folder>/logs


class KaggleAccount(_Strict):
    # None: the username in config_dir's kaggle.json (an access_token names no user: set it for one)
    username: str | None = None
    config_dir: str | None = None  # None: Kaggle's own default (~/.kaggle or $KAGGLE_CONFIG_DIR)


class KaggleSettings(_Strict):
    default_account: str | None = None
    accounts: dict[str, KaggleAccount] = {}


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SshHost(_Strict):
    destination: str  # anything `ssh` accepts: user@host, a ~/.ssh/config alias, ssh://user@host:port
    workdir: str = "~/molremote"
    python: str = "python3"
    venv: str | None = None
    env: list[str] = []  # variable NAMES forwarded to the job (values come from the remote environment)
    gpus: int = 0

    @field_validator("env")
    @classmethod
    def _names_only(cls, v: list[str]) -> list[str]:
        bad = [x for x in v if not _ENV_NAME.match(x)]
        if bad:
            raise ValueError(f"must list variable names only (no values), got {bad[0].split('=')[0]!r}=...")
        return v


class SshSettings(_Strict):
    hosts: dict[str, SshHost] = {}


class SlurmCluster(_Strict):
    login: str = "local"  # ssh destination of the login node, or "local" (sbatch on this machine)
    partition: str | None = None
    account: str | None = None
    workdir: str = "~/molremote"
    python: str = "python3"
    extra_sbatch: list[str] = []


class SlurmSettings(_Strict):
    clusters: dict[str, SlurmCluster] = {}


class BundleSettings(_Strict):
    # Findings of the bundle's secret scan that are not secrets (false positives): "path:line", a path, or
    # a glob over paths ("tests/fixtures/*"). Each entry ships what it names: keep the list short.
    allow_secrets: list[str] = []


class Settings(_Strict):
    store: StoreSettings = StoreSettings()
    wandb: WandbSettings = WandbSettings()
    kaggle: KaggleSettings = KaggleSettings()
    ssh: SshSettings = SshSettings()
    slurm: SlurmSettings = SlurmSettings()
    bundle: BundleSettings = BundleSettings()
    # Where the settings came from (not part of the file format).
    file: str | None = None  # the settings file read, None if there was none
    sources: dict[str, str] = {}  # dotted key -> "file <path>" | "env <VAR>" (absent: default)


# Tables whose children are user-chosen names (their keys are never checked as field names).
_NAME_MAPS = {("kaggle", "accounts"), ("ssh", "hosts"), ("slurm", "clusters")}

# (setting, environment variables, highest precedence first). Documented in the module docstring.
ENV_OVERRIDES: list[tuple[str, tuple[str, ...]]] = [
    ("store.url", ("MOLREMOTE_STORE",)),
    ("wandb.mode", ("MOLREMOTE_WANDB_MODE", "WANDB_MODE")),
    ("wandb.project", ("MOLREMOTE_WANDB_PROJECT", "WANDB_PROJECT")),
    ("wandb.entity", ("MOLREMOTE_WANDB_ENTITY", "WANDB_ENTITY")),
    ("wandb.dir", ("MOLREMOTE_WANDB_DIR",)),
    ("kaggle.default_account", ("MOLREMOTE_KAGGLE_ACCOUNT",)),
]
# wandb's own spellings of its modes.
_WANDB_MODE_ALIASES = {"dryrun": "offline", "run": "online"}

# ---------------------------------------------------------------------------------------- secret guard
WHERE_TOKENS_BELONG = (
    "Tokens never go in molremote.toml. Put them where each tool looks: "
    "Hugging Face: HF_TOKEN or `hf auth login` (the Hub token cache); "
    "W&B: WANDB_API_KEY or `wandb login` (~/.netrc); "
    "Kaggle: ~/.kaggle/kaggle.json or ~/.kaggle/access_token (or KAGGLE_USERNAME/KAGGLE_KEY; "
    "Kaggle Secrets inside a kernel). Remote jobs read them from the remote environment."
)


def _refuse_secret_value(value: str, where: str, dotted: str) -> None:
    """ConfigError when `value` holds a token, a password in a URL or ssh destination, or a token in a URL
    query. The message shows the value masked (never the secret) and the kind of secret found."""
    found = secrets.find_in_value(value)
    if found:
        raise ConfigError(
            f"{where}: the value of '{dotted}' ({secrets.mask(value)!r}) holds a {found[0].kind}; "
            f"it is refused. {WHERE_TOKENS_BELONG}"
        )


def _check_no_secrets(raw: dict[str, Any], file: str, prefix: tuple[str, ...] = ()) -> None:
    for key, value in raw.items():
        path = (*prefix, key)
        dotted = ".".join(path)
        is_name = tuple(prefix) in _NAME_MAPS  # a user-chosen name such as [ssh.hosts.<name>]
        if not is_name and secrets.secret_key(key) and path != ("bundle", "allow_secrets"):
            raise ConfigError(f"{file}: key '{dotted}' looks like a secret and is refused. {WHERE_TOKENS_BELONG}")
        if isinstance(value, dict):
            _check_no_secrets(value, file, path)
            continue
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str):
                _refuse_secret_value(v, file, dotted)


# --------------------------------------------------------------------------------------------- loading
def config_path(root: Path | None = None) -> Path:
    """`MOLREMOTE_CONFIG`, else `<project root>/molremote.toml` (it need not exist)."""
    env = os.environ.get("MOLREMOTE_CONFIG")
    return Path(env).expanduser() if env else (root or project_root()) / CONFIG_FILE


def _dotted(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def _validation_error(e: ValidationError, where: str) -> ConfigError:
    errors = e.errors()
    # An unknown key is usually a misspelt known one: report it before the "missing" it causes.
    err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    key = _dotted(loc)
    if err["type"] == "extra_forbidden":
        # Known keys at that level: walk the schema (name-map levels skip the user's own name).
        known = _known_fields_at(loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        more = f"; did you mean '{hint[0]}'?" if hint else (f"; known keys: {', '.join(known)}" if known else "")
        return ConfigError(f"{where}: unknown key '{key}'{more}")
    if err["type"] == "missing":
        return ConfigError(f"{where}: missing key '{key}'")
    if err["type"] == "value_error":  # our own validators describe the value without echoing it (secrets)
        return ConfigError(f"{where}: key '{key}': {err['msg']}")
    return ConfigError(f"{where}: key '{key}' = {err.get('input')!r}: {err['msg']}")


def _known_fields_at(loc: tuple) -> list[str]:
    model: Any = Settings
    i = 0
    while i < len(loc):
        f = model.model_fields.get(str(loc[i])) if model is not None else None
        if f is None:
            return []
        ann = f.annotation
        if getattr(ann, "__origin__", None) is dict:
            model = ann.__args__[1]
            i += 2  # the field, then the user's name
            continue
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        i += 1
    return [k for k in model.model_fields if k not in ("file", "sources")] if model is not None else []


def _set(d: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def _leaf_keys(d: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        out += _leaf_keys(v, key + ".") if isinstance(v, dict) else [key]
    return out


def _env_key() -> tuple:
    names = ["MOLREMOTE_CONFIG", "MOLREMOTE_PROJECT"] + [v for _, vs in ENV_OVERRIDES for v in vs]
    return tuple((n, os.environ.get(n)) for n in names)


def read_settings(path: Path | None = None, *, use_env: bool = True) -> Settings:
    """Parse and validate the settings file (absent file: defaults), then apply environment overrides.

    Raises ConfigError naming the file (or variable) and the key for unknown keys, wrong types, TOML
    syntax errors and anything that looks like a secret."""
    path = path or config_path()
    raw: dict[str, Any] = {}
    file: str | None = None
    if path.is_file():
        file = str(path)
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        except UnicodeDecodeError as e:  # tomllib reads bytes as UTF-8: a binary or Latin-1 file lands here
            raise ConfigError(f"{path}: not valid TOML: not UTF-8 text (byte at offset {e.start})") from None
        for k in ("file", "sources"):  # bookkeeping fields, not part of the file format
            if k in raw:
                raise ConfigError(f"{path}: unknown key '{k}'")
        _check_no_secrets(raw, str(path))
    elif os.environ.get("MOLREMOTE_CONFIG") and path == config_path():
        raise ConfigError(f"MOLREMOTE_CONFIG={path}: no such file")
    sources = {k: f"file {path}" for k in _leaf_keys(raw)}
    try:
        Settings.model_validate(raw)  # report file errors against the file, before env values mix in
    except ValidationError as e:
        raise _validation_error(e, str(path)) from None

    if use_env:
        for key, names in ENV_OVERRIDES:
            for name in names:
                value = os.environ.get(name)
                if value is None or value == "":
                    continue
                if key == "wandb.mode":
                    value = _WANDB_MODE_ALIASES.get(value.lower(), value.lower())
                _refuse_secret_value(value, f"environment variable {name}", key)
                _set(raw, key, value)
                sources[key] = f"env {name}"
                try:
                    Settings.model_validate(raw)
                except ValidationError as e:
                    raise _validation_error(e, f"environment variable {name}") from None
                break
    settings = Settings.model_validate({**raw, "file": file, "sources": sources})
    acc = settings.kaggle.default_account
    if acc and settings.kaggle.accounts and acc not in settings.kaggle.accounts:
        where = sources.get("kaggle.default_account", "").replace("file ", "").replace("env ", "environment variable ")
        raise ConfigError(
            f"{where}: key 'kaggle.default_account' = {acc!r} names no [kaggle.accounts.{acc}] "
            f"(known: {', '.join(settings.kaggle.accounts)})"
        )
    return settings


@functools.lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int, env: tuple) -> Settings:
    return read_settings(Path(path))


def load_settings(path: Path | None = None) -> Settings:
    """The effective settings, cached until the file or a relevant environment variable changes."""
    path = path or config_path()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = -1
    return _cached(str(path), mtime, _env_key())


load_settings.cache_clear = _cached.cache_clear  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ secrets: where, never what
def _nonempty_file(p: Path) -> bool:
    try:
        return p.is_file() and p.stat().st_size > 0
    except OSError:
        return False


def hf_token_source() -> str | None:
    """Where huggingface_hub would find a token ('env HF_TOKEN', 'file <path>'), None if nowhere."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(name):
            return f"env {name}"
    # Same lookup as huggingface_hub.constants, written out so this module does not import the client.
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    token_path = Path(os.environ.get("HF_TOKEN_PATH") or os.path.join(hf_home, "token")).expanduser()
    return f"file {token_path}" if _nonempty_file(token_path) else None


def hf_token() -> str | None:
    """The Hub token itself, for passing to a client call (never printed or stored)."""
    src = hf_token_source()
    if src is None:
        return None
    if src.startswith("env "):
        return os.environ[src[4:]].strip()
    return Path(src[5:]).read_text().strip() or None


def wandb_host() -> str:
    base = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    return urlsplit(base).hostname or "api.wandb.ai"


def wandb_key_source() -> str | None:
    """'env WANDB_API_KEY' or 'netrc <path>' (wandb login writes ~/.netrc), None if nowhere."""
    if os.environ.get("WANDB_API_KEY"):
        return "env WANDB_API_KEY"
    path = Path(os.environ.get("NETRC") or "~/.netrc").expanduser()
    if path.is_file():
        try:
            if netrc.netrc(str(path)).authenticators(wandb_host()):
                return f"netrc {path}"
        except (netrc.NetrcParseError, OSError):
            return None
    return None


def kaggle_config_dir(account: KaggleAccount | None = None) -> Path:
    """The folder the kaggle client reads for this account (same rule as kaggle's own)."""
    if account is not None and account.config_dir:
        return Path(account.config_dir).expanduser()
    env = os.environ.get("KAGGLE_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    home = Path("~/.kaggle").expanduser()
    if not home.exists():
        xdg = Path(os.environ.get("XDG_CONFIG_HOME") or "~/.config").expanduser() / "kaggle"
        if xdg.exists():
            return xdg
    return home


def kaggle_credentials_source(account: KaggleAccount | None = None) -> str | None:
    """Where the kaggle client would find credentials for `account` (None: the default), None if nowhere."""
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "env KAGGLE_API_TOKEN"
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "env KAGGLE_USERNAME/KAGGLE_KEY"
    d = kaggle_config_dir(account)
    for name in ("access_token", "access_token.txt", "kaggle.json"):
        if _nonempty_file(d / name):
            return f"file {d / name}"
    return None


def secret_presence(settings: Settings | None = None) -> list[tuple[str, bool, str]]:
    """(name, present, where) for each credential molremote may use. Never the value."""
    settings = settings or load_settings()
    rows: list[tuple[str, bool, str]] = []
    for name, src in (("HF_TOKEN", hf_token_source()), ("WANDB_API_KEY", wandb_key_source())):
        rows.append((name, src is not None, src or "not found"))
    accounts = settings.kaggle.accounts or {}
    if not accounts:
        src = kaggle_credentials_source()
        rows.append(("Kaggle credentials", src is not None, src or "not found"))
    for name, acc in accounts.items():
        src = kaggle_credentials_source(acc)
        rows.append((f"Kaggle credentials ({name})", src is not None, src or "not found"))
    return rows


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out += _flatten(v, key + ".")
        else:
            out.append((key, v))
    return out


def effective_settings_table(settings: Settings | None = None) -> list[tuple[str, str, str]]:
    """Rows (key, value, source) for `molremote config`: every setting with where it came from, then the
    credentials as present/missing with where they were found. Secret values are never included."""
    settings = settings or load_settings()
    d = settings.model_dump(mode="json", exclude={"file", "sources"})
    root = project_root()
    in_project = (root / "experiments").is_dir() or bool(os.environ.get("MOLREMOTE_EXPERIMENTS"))
    rows = [
        (
            "project",
            str(root)
            if in_project
            else f"(none: no experiments/ in {root} or above; cd into a project or set MOLREMOTE_PROJECT)",
            "env MOLREMOTE_PROJECT" if os.environ.get("MOLREMOTE_PROJECT") else "",
        ),
        ("settings file", settings.file or f"(none: {config_path()} absent)", ""),
    ]
    for key, value in _flatten(d):
        shown = "" if value is None else (", ".join(map(str, value)) if isinstance(value, list) else str(value))
        if key == "store.url" and value is None:
            shown = "(local runs folder)"
        elif value == {}:
            shown = "(none)"
        rows.append((key, secrets.mask(shown), settings.sources.get(key, "default")))
    for name, present, where in secret_presence(settings):
        rows.append((f"secret {name}", "present" if present else "missing", where))
    return rows
