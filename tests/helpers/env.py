"""Test isolation from the developer's own accounts: no real token, netrc, kaggle.json or W&B state leaks in."""

from __future__ import annotations

import os
from pathlib import Path

PREFIXES = ("WANDB_", "HF_", "HUGGING_FACE_", "KAGGLE_", "MOLREMOTE_")
EXTRA = ("NETRC", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")
KEEP = ("HF_HUB_DISABLE_XET",)  # the loopback Hub speaks git-LFS, not Xet (tests/conftest.py sets it)


def isolate_env(monkeypatch, tmp_path: Path) -> Path:
    """Clear credential/settings variables, point HOME and wandb's own folders into `tmp_path`/home.
    Returns the fake home."""
    for k in list(os.environ):
        if (k.startswith(PREFIXES) or k in EXTRA) and k not in KEEP:
            monkeypatch.delenv(k, raising=False)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    for k, sub in (
        ("WANDB_CONFIG_DIR", "wandb-config"),
        ("WANDB_CACHE_DIR", "wandb-cache"),
        ("WANDB_DATA_DIR", "wandb-data"),
    ):
        monkeypatch.setenv(k, str(tmp_path / sub))
    (tmp_path / "experiments").mkdir(exist_ok=True)
    monkeypatch.setenv("MOLREMOTE_PROJECT", str(tmp_path))
    from molremote.settings import load_settings

    load_settings.cache_clear()
    return home


KAGGLE_CLIENT_UNSET = (
    "KAGGLE_API_TOKEN",
    "KAGGLE_CONFIG_DIR",
    "KAGGLE_API_ENVIRONMENT",
    "MOLREMOTE_KAGGLE_ACCOUNT",
    "MOLREMOTE_CONFIG",
    "MOLREMOTE_STORE",
    "MOLREMOTE_KAGGLE_STORE",
    "XDG_CONFIG_HOME",
)


def kaggle_client_env(monkeypatch, tmp_path: Path, server) -> Path:
    """A clean machine whose Kaggle client talks to the loopback `server` as its default account: empty HOME,
    no project settings, the account in KAGGLE_USERNAME/KAGGLE_KEY. Returns the fake home."""
    from molremote.backends.kaggle_api import ENDPOINT_ENV

    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MOLREMOTE_PROJECT", str(tmp_path / "proj"))
    for v in KAGGLE_CLIENT_UNSET:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("KAGGLE_USERNAME", server.username)
    monkeypatch.setenv("KAGGLE_KEY", server.key)
    monkeypatch.setenv(ENDPOINT_ENV, server.url)
    return home
