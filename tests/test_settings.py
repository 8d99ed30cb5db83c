import os
import subprocess
import sys
import textwrap

import pytest

from molremote.errors import ConfigError
from molremote.settings import (
    ENV_OVERRIDES,
    config_path,
    effective_settings_table,
    load_settings,
    secret_presence,
)
from tests.conftest import ROOT
from tests.helpers.env import isolate_env

FULL = """
[store]
url = "hf://datasets/me/molremote-runs"

[wandb]
project = "mol"
entity = "team"
mode = "offline"

[kaggle]
default_account = "main"
[kaggle.accounts.main]
username = "me"
config_dir = "~/kaggle-main"
[kaggle.accounts.tokenbox]   # a user-chosen name may contain anything
username = "other"

[ssh.hosts.box]
destination = "me@box.example.org"
venv = "~/venvs/m"
env = ["HF_TOKEN", "WANDB_API_KEY"]
gpus = 2

[slurm.clusters.hpc]
login = "me@login.hpc"
partition = "gpu"
account = "proj1"
extra_sbatch = ["--qos=normal", "--constraint=a100"]
"""


@pytest.fixture
def proj(tmp_path, monkeypatch):
    isolate_env(monkeypatch, tmp_path)
    return tmp_path


def write(proj, text):
    p = proj / "molremote.toml"
    p.write_text(textwrap.dedent(text))
    load_settings.cache_clear()
    return p


def test_defaults_without_a_file(proj):
    s = load_settings()
    assert config_path() == proj / "molremote.toml"
    assert s.file is None and s.store.url is None
    assert s.wandb.mode == "disabled" and s.wandb.project == "molremote"
    assert s.ssh.hosts == {} and s.sources == {}


def test_parse_full_file(proj):
    p = write(proj, FULL)
    s = load_settings()
    assert s.file == str(p)
    assert s.store.url == "hf://datasets/me/molremote-runs"
    assert (s.wandb.project, s.wandb.entity, s.wandb.mode) == ("mol", "team", "offline")
    assert s.kaggle.default_account == "main"
    assert s.kaggle.accounts["main"].config_dir == "~/kaggle-main"
    assert s.kaggle.accounts["tokenbox"].username == "other"
    box = s.ssh.hosts["box"]
    assert (box.destination, box.gpus, box.env, box.python) == (
        "me@box.example.org",
        2,
        ["HF_TOKEN", "WANDB_API_KEY"],
        "python3",
    )
    hpc = s.slurm.clusters["hpc"]
    assert (hpc.login, hpc.partition, hpc.account) == ("me@login.hpc", "gpu", "proj1")
    assert hpc.extra_sbatch == ["--qos=normal", "--constraint=a100"]
    assert s.sources["wandb.mode"] == f"file {p}"
    assert "wandb.dir" not in s.sources


@pytest.mark.parametrize(
    "text, key, hint",
    [
        ("[wandb]\nprojet = 'x'\n", "wandb.projet", "did you mean 'project'"),
        ("[wandbb]\nproject = 'x'\n", "wandbb", "did you mean 'wandb'"),
        ("[ssh.hosts.box]\ndestination = 'a'\nvnev = 'x'\n", "ssh.hosts.box.vnev", "did you mean 'venv'"),
        ("[slurm.clusters.c]\nzzz = 1\n", "slurm.clusters.c.zzz", "known keys: login, partition"),
    ],
)
def test_unknown_key_names_file_and_key(proj, text, key, hint):
    p = write(proj, text)
    with pytest.raises(ConfigError) as e:
        load_settings()
    msg = str(e.value)
    assert str(p) in msg and f"unknown key '{key}'" in msg and hint in msg


def test_misspelt_required_key_reports_the_misspelling_first(proj):
    write(proj, "[ssh.hosts.box]\ndestinaton = 'me@box'\n")
    with pytest.raises(ConfigError, match=r"unknown key 'ssh.hosts.box.destinaton'; did you mean 'destination'"):
        load_settings()


def test_wrong_type_and_bad_toml_name_file_and_key(proj):
    p = write(proj, "[ssh.hosts.box]\ndestination = 'a'\ngpus = 'two'\n")
    with pytest.raises(ConfigError, match=r"molremote.toml: key 'ssh.hosts.box.gpus' = 'two'"):
        load_settings()
    p.write_text("[wandb\nmode=1")
    load_settings.cache_clear()
    with pytest.raises(ConfigError, match=rf"{p}: not valid TOML"):
        load_settings()


def test_unknown_default_kaggle_account(proj):
    write(proj, "[kaggle]\ndefault_account = 'nope'\n[kaggle.accounts.main]\nusername = 'me'\n")
    with pytest.raises(ConfigError, match=r"'kaggle.default_account' = 'nope' names no \[kaggle.accounts.nope\]"):
        load_settings()


def test_env_overrides_file(proj, monkeypatch):
    write(proj, FULL)
    monkeypatch.setenv("MOLREMOTE_STORE", "/data/store")
    monkeypatch.setenv("WANDB_MODE", "dryrun")  # wandb's own spelling of offline
    monkeypatch.setenv("WANDB_PROJECT", "p2")
    monkeypatch.setenv("WANDB_ENTITY", "e2")
    s = load_settings()
    assert s.store.url == "/data/store" and s.sources["store.url"] == "env MOLREMOTE_STORE"
    assert (s.wandb.mode, s.wandb.project, s.wandb.entity) == ("offline", "p2", "e2")
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("MOLREMOTE_WANDB_MODE", "disabled")  # molremote's own variable wins over wandb's
    s = load_settings()  # no cache_clear: the cache notices the environment change
    assert s.wandb.mode == "disabled" and s.sources["wandb.mode"] == "env MOLREMOTE_WANDB_MODE"
    assert s.ssh.hosts["box"].gpus == 2  # untouched settings keep their file values


def test_bad_env_value_names_the_variable(proj, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "loud")
    with pytest.raises(ConfigError, match=r"environment variable WANDB_MODE: key 'wandb.mode' = 'loud'"):
        load_settings()


def test_molremote_config_points_elsewhere(proj, monkeypatch, tmp_path):
    other = tmp_path / "elsewhere.toml"
    other.write_text("[wandb]\nproject = 'from-elsewhere'\n")
    monkeypatch.setenv("MOLREMOTE_CONFIG", str(other))
    assert load_settings().wandb.project == "from-elsewhere"
    monkeypatch.setenv("MOLREMOTE_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="MOLREMOTE_CONFIG=.*missing.toml: no such file"):
        load_settings()


def test_cache_follows_file_changes(proj):
    p = write(proj, "[wandb]\nproject = 'a'\n")
    first = load_settings()
    assert load_settings() is first
    p.write_text("[wandb]\nproject = 'b'\n")
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert load_settings().wandb.project == "b"


@pytest.mark.parametrize(
    "text, key",
    [
        ("[wandb]\napi_key = 'abc'\n", "wandb.api_key"),
        ("[kaggle.accounts.main]\nusername = 'me'\nkey = 'abc'\n", "kaggle.accounts.main.key"),
        ("[store]\nurl = 'hf://me/r'\ntoken = 'abc'\n", "store.token"),
        ("hf_token = 'abc'\n", "hf_token"),
        ("[ssh.hosts.box]\ndestination = 'a'\npassword = 'abc'\n", "ssh.hosts.box.password"),
    ],
)
def test_token_like_key_refused_with_where_tokens_belong(proj, text, key):
    p = write(proj, text)
    with pytest.raises(ConfigError) as e:
        load_settings()
    msg = str(e.value)
    assert str(p) in msg and f"'{key}' looks like a secret" in msg
    for where in ("HF_TOKEN", "WANDB_API_KEY", "~/.netrc", "~/.kaggle"):
        assert where in msg
    assert "abc" not in msg  # the value is never echoed


@pytest.mark.parametrize(
    "text, what",
    [
        ("[store]\nurl = 'hf_" + "a" * 34 + "'\n", "holds a Hugging Face token"),
        # split with `+` (an implicit concatenation is joined by `ruff format`): whole, the line is a password
        # in a URL that the bundle's secret scan refuses to ship (tests/test_launching.py bundles this tree)
        ("[store]\nurl = 'https://me:" + "s3cr3t@example.org/store'\n", "holds a password in a URL"),
    ],
)
def test_token_like_value_refused(proj, text, what):
    write(proj, text)
    with pytest.raises(ConfigError, match=what) as e:
        load_settings()
    assert "s3cr3t" not in str(e.value) and "a" * 34 not in str(e.value)


def test_ssh_env_lists_names_not_values(proj):
    write(proj, "[ssh.hosts.box]\ndestination = 'a'\nenv = ['HF_TOKEN=hf_abc']\n")
    with pytest.raises(ConfigError, match=r"'ssh.hosts.box.env'.*variable names only") as e:
        load_settings()
    assert "hf_abc" not in str(e.value)


def test_table_masks_secrets_and_says_where_they_come_from(proj, monkeypatch):
    write(proj, FULL)
    secrets = {
        "HF_TOKEN": "hf_SECRETabcdefghijklmnopqrstuv",
        "WANDB_API_KEY": "wandbSECRET0123456789",
        "KAGGLE_USERNAME": "me",
        "KAGGLE_KEY": "kaggleSECRET42",
    }
    for k, v in secrets.items():
        monkeypatch.setenv(k, v)
    rows = effective_settings_table()
    text = "\n".join(" | ".join(r) for r in rows)
    for k in ("HF_TOKEN", "WANDB_API_KEY", "KAGGLE_KEY"):
        assert secrets[k] not in text
    assert "SECRET" not in text
    by_key = {r[0]: r for r in rows}
    assert by_key["secret HF_TOKEN"][1:] == ("present", "env HF_TOKEN")
    assert by_key["secret WANDB_API_KEY"][1:] == ("present", "env WANDB_API_KEY")
    assert by_key["secret Kaggle credentials (main)"][1:] == ("present", "env KAGGLE_USERNAME/KAGGLE_KEY")
    assert by_key["wandb.mode"][1:] == ("offline", f"file {proj / 'molremote.toml'}")
    assert by_key["ssh.hosts.box.env"][1] == "HF_TOKEN, WANDB_API_KEY"  # names, as configured
    assert by_key["wandb.dir"][1:] == ("", "default")


def test_secret_presence_from_files(proj, monkeypatch):
    home = proj / "home"
    write(
        proj,
        "[kaggle.accounts.main]\nusername = 'me'\nconfig_dir = '~/km'\n[kaggle.accounts.spare]\nusername = 'me2'\n",
    )
    assert [r[1] for r in secret_presence()] == [False, False, False, False]
    (home / ".cache" / "huggingface").mkdir(parents=True)
    (home / ".cache" / "huggingface" / "token").write_text("hf_" + "FILESECRETxxxxxxxxxxxxxxxxxxxx\n")
    (home / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password NETRCSECRET\n")
    (home / ".netrc").chmod(0o600)
    (home / "km").mkdir()
    (home / "km" / "kaggle.json").write_text('{"username": "me", "key": "KJSONSECRET"}')
    rows = {r[0]: r for r in secret_presence()}
    assert rows["HF_TOKEN"] == ("HF_TOKEN", True, f"file {home}/.cache/huggingface/token")
    assert rows["WANDB_API_KEY"] == ("WANDB_API_KEY", True, f"netrc {home}/.netrc")
    assert rows["Kaggle credentials (main)"] == ("Kaggle credentials (main)", True, f"file {home}/km/kaggle.json")
    assert rows["Kaggle credentials (spare)"][1:] == (False, "not found")
    text = repr(effective_settings_table())
    assert "SECRET" not in text


def test_every_listed_env_override_overrides_its_setting_and_is_documented(proj, monkeypatch):
    import molremote.settings as m

    write(proj, "[kaggle.accounts.spare]\nusername = 'me'\nconfig_dir = '~/km'\n")

    def value(dotted: str, name: str) -> str:
        return {"wandb.mode": "offline", "kaggle.default_account": "spare"}.get(
            dotted, f"/v/{name.lower()}" if dotted in ("store.url", "wandb.dir") else f"v-{name.lower()}"
        )

    def setting(dotted: str) -> tuple:
        s = load_settings()
        section, key = dotted.split(".")
        return getattr(getattr(s, section), key), s.sources[dotted]

    for dotted, names in ENV_OVERRIDES:
        assert all(n in m.__doc__ for n in names), names
        for name in names:
            monkeypatch.setenv(name, value(dotted, name))
            assert setting(dotted) == (value(dotted, name), f"env {name}"), name
            monkeypatch.delenv(name)
        if len(names) > 1:  # both set: the first listed wins
            monkeypatch.setenv(names[0], value(dotted, names[0]))
            monkeypatch.setenv(names[1], "online" if dotted == "wandb.mode" else "other")
            assert setting(dotted) == (value(dotted, names[0]), f"env {names[0]}")
            monkeypatch.delenv(names[0])
            monkeypatch.delenv(names[1])


def test_settings_and_doctor_import_no_heavy_modules():
    code = (
        "import sys, molremote.settings, molremote.doctor, molremote.tracking\n"
        "heavy = [m for m in ('torch', 'wandb', 'huggingface_hub', 'kaggle') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def _toml_blocks() -> list[tuple[str, str]]:
    """(where, text) of every ```toml block in README.md and docs/*.md, and the settings module's example."""
    import re

    import molremote.settings as settings_module

    out = []
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = md.read_text()
        for m in re.finditer(r"^```toml\n(.*?)^```", text, re.S | re.M):
            out.append((f"{md.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}", m.group(1)))
    # the module docstring's example: its first indented block (blank lines inside it included)
    lines = (settings_module.__doc__ or "").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("    "))
    end = next(
        (i for i in range(start, len(lines)) if lines[i].strip() and not lines[i].startswith("    ")), len(lines)
    )
    out.append(("molremote/settings.py docstring", textwrap.dedent("\n".join(lines[start:end]))))
    return out


@pytest.mark.parametrize("where, text", _toml_blocks(), ids=lambda x: x if ":" in x or "docstring" in x else "")
def test_every_documented_example_loads(proj, where, text):
    """Issue 11 item 5: each example a user may copy is valid for the real loader."""
    assert text.strip(), f"{where}: empty example"
    write(proj, text)
    s = load_settings()
    assert s.file == str(proj / "molremote.toml")
    assert s.sources, f"{where}: the example sets nothing"


def test_readme_example_is_among_them():
    assert any(w.startswith("README.md:") for w, _ in _toml_blocks())


def test_kaggle_account_username_comes_from_kaggle_json(proj):
    """The README's account (config_dir only) loads, and the user is the one kaggle.json names."""
    import json

    from molremote.backends.kaggle_api import resolve_credentials

    d = proj / "kaggle-main"
    d.mkdir()
    (d / "kaggle.json").write_text(json.dumps({"username": "alice", "key": "0" * 32}))
    write(proj, f'[kaggle]\ndefault_account = "main"\n[kaggle.accounts.main]\nconfig_dir = "{d}"\n')
    assert load_settings().kaggle.accounts["main"].username is None
    creds = resolve_credentials()
    assert (creds.username, creds.account, creds.source) == ("alice", "main", f"file {d / 'kaggle.json'}")
