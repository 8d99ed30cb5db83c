"""Stores: the durable home of run folders. `open_store(url)` picks the kind from the URL.

None / ""              settings' store.url (molremote.toml [store] url, or MOLREMOTE_STORE), else the
                       default local store `<project>/.molremote/store` (never the runs folder itself)
/path, ~/path, file:// LocalStore (local disk or a shared filesystem)
hf://owner/repo        HubStore: a private model repo, created on first push (hf://datasets/owner/repo
                       for a dataset repo; hf://repo for a repo of the token's user)
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import StoreError
from .base import Store, StoreConflictError
from .local import LocalStore

DEFAULT_LOCAL_STORE = ".molremote/store"  # relative to the project root

__all__ = ["Store", "StoreConflictError", "LocalStore", "open_store", "default_store_url", "configured_store"]


def default_store_url() -> str:
    from ..project import project_root

    return str(project_root() / DEFAULT_LOCAL_STORE)


def _configured_url() -> str | None:
    try:
        from ..settings import load_settings
    except ImportError:  # pragma: no cover - settings module absent in a stripped bundle
        import os

        return os.environ.get("MOLREMOTE_STORE") or None
    return load_settings().store.url


def open_store(url: str | None = None, *, endpoint: str | None = None, token: str | None = None) -> Store:
    """A Store for `url` (see module doc). `endpoint` / `token` override the Hub's (tests, several accounts)."""
    url = (url or "").strip() or _configured_url() or default_store_url()
    if url.startswith("hf://"):
        from .hub import HubStore

        rest = url[len("hf://") :].strip("/")
        repo_type = "model"
        for t in ("datasets", "models"):
            if rest.startswith(t + "/"):
                repo_type, rest = t[:-1], rest[len(t) + 1 :]
        return HubStore(rest, endpoint=endpoint, token=token, repo_type=repo_type)
    if url.startswith("file://"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise StoreError(f"store URL {url!r}: file:// URLs must name a local path (file:///abs/path)")
        return LocalStore(Path(unquote(parts.path)))
    if "://" in url:
        raise StoreError(f"store URL {url!r}: unknown scheme; use a folder path, file:///path or hf://owner/repo")
    return LocalStore(Path(url).expanduser())


def configured_store(*, default_if_present: bool = False) -> Store | None:
    """The store named by the settings (molremote.toml [store] url / MOLREMOTE_STORE); None when none is
    named, or, with `default_if_present`, the default local store when its folder exists."""
    url = _configured_url()
    if url:
        return open_store(url)
    if default_if_present and Path(default_store_url()).is_dir():
        return open_store(default_store_url())
    return None
