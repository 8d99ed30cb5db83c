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
