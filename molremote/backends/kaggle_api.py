"""The one door between molremote and Kaggle: the official `kaggle` client (2.2.4), wrapped narrowly.

Everything Kaggle-related in molremote (the Kaggle kernel backend, `data push`, `--submit`) goes through
`KaggleClient`, so tests can run it against the loopback server in tests/servers/kaggle_server.py.

Why a wrapper rather than `import kaggle` where needed:
- `import kaggle` authenticates at import time and prints a help block without credentials; it is imported
  here lazily, quietly, with the chosen account's credentials already in the environment.
- Several accounts: `molremote.toml` `[kaggle.accounts.NAME] username = "...", config_dir = "..."` names a
  folder holding that account's `kaggle.json` (or `access_token`); no key ever lives in the project.
  Without a name: `MOLREMOTE_KAGGLE_ACCOUNT` / `kaggle.default_account`, else Kaggle's own lookup
  (`KAGGLE_API_TOKEN`, `KAGGLE_USERNAME`+`KAGGLE_KEY`, then `$KAGGLE_CONFIG_DIR` or `~/.kaggle`).
- The client reports many failures in the response (`.error`) instead of raising, and prints others;
  here every failure is a `BackendError` whose message says what failed. No secret value is logged.
- Tests: `MOLREMOTE_KAGGLE_ENDPOINT=http://127.0.0.1:PORT` (or `endpoint=`) points the client there.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import importlib
import io
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import BackendError
from ..fsutil import write_bytes

log = logging.getLogger(__name__)

ENDPOINT_ENV = "MOLREMOTE_KAGGLE_ENDPOINT"
# Variables the kaggle client reads for identity and endpoint; set per call, restored afterwards.
_KAGGLE_VARS = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR", "KAGGLE_API_ENVIRONMENT")
# The environment is process-wide: one account active at a time (re-entrant for nested use).
_ENV_LOCK = threading.RLock()
TOKEN_FILES = ("access_token", "access_token.txt")
DATASET_METADATA = "dataset-metadata.json"
KERNEL_METADATA = "kernel-metadata.json"
KERNEL_STATUSES = ("QUEUED", "RUNNING", "COMPLETE", "ERROR", "CANCEL_REQUESTED", "CANCEL_ACKNOWLEDGED", "NEW_SCRIPT")
FINAL_STATUSES = ("COMPLETE", "ERROR", "CANCEL_ACKNOWLEDGED")
DOWNLOAD_TIMEOUT_S = 300  # one output file; Kaggle's signed urls answer quickly or not at all
PAGE_SIZE = 100  # output files / submissions per listing call


# ---------------------------------------------------------------------------------------- credentials
@dataclass(frozen=True)
class Credentials:
    """Who we are on Kaggle and where that came from. Secret fields never appear in repr()."""

    source: str  # "env KAGGLE_USERNAME/KAGGLE_KEY", "file /home/me/.kaggle/kaggle.json", ...
    account: str | None = None  # the molremote.toml account name, None for Kaggle's default lookup
    username: str | None = None  # None for a token until the server tells us
    key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    config_dir: Path | None = None

    @property
    def uses_token(self) -> bool:
        return self.token is not None


def _from_dir(d: Path, account: str | None) -> Credentials | None:
    for name in TOKEN_FILES:
        p = d / name
        if p.is_file() and p.read_text().strip():
            return Credentials(f"file {p}", account, token=p.read_text().strip(), config_dir=d)
    p = d / "kaggle.json"
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
        username, key = data["username"], data["key"]
    except (ValueError, KeyError, TypeError):
        raise BackendError(
            f"{p}: not a Kaggle API key file (expected JSON with 'username' and 'key'); "
            "download a new one from kaggle.com > Settings > API"
        ) from None
    return Credentials(f"file {p}", account, username=str(username), key=str(key), config_dir=d)


def resolve_credentials(account: str | None = None) -> Credentials:
    """The credentials for `account` (a `[kaggle.accounts.NAME]`), or the default ones. BackendError if none."""
    from ..settings import kaggle_config_dir, load_settings  # settings import no client: cheap

    settings = load_settings()
    name = account or settings.kaggle.default_account
    if name:
        acc = settings.kaggle.accounts.get(name)
        if acc is None:
            where = settings.file or "molremote.toml"
            raise BackendError(
                f"Kaggle account '{name}' is not defined: add [kaggle.accounts.{name}] with "
                f"username and config_dir to {where}"
            )
        d = kaggle_config_dir(acc)
        creds = _from_dir(d, name)
        if creds is None:
            raise BackendError(
                f"Kaggle account '{name}': no kaggle.json or access_token in {d} "
                f"(config_dir of [kaggle.accounts.{name}])"
            )
        if creds.username is None:
            return Credentials(creds.source, name, username=acc.username, token=creds.token, config_dir=d)
        if acc.username and creds.username != acc.username:
            raise BackendError(
                f"Kaggle account '{name}': {creds.source[5:]} belongs to '{creds.username}', "
                f"but [kaggle.accounts.{name}] says username = '{acc.username}'"
            )
        return creds
    if os.environ.get("KAGGLE_API_TOKEN"):
        tok = os.environ["KAGGLE_API_TOKEN"].strip()
        if Path(tok).is_file():  # kaggle accepts a path to a token file there too
            tok = Path(tok).read_text().strip()
        return Credentials("env KAGGLE_API_TOKEN", token=tok)
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return Credentials(
            "env KAGGLE_USERNAME/KAGGLE_KEY", username=os.environ["KAGGLE_USERNAME"], key=os.environ["KAGGLE_KEY"]
        )
    d = kaggle_config_dir()
    creds = _from_dir(d, None)
    if creds is None:
        raise BackendError(
            f"no Kaggle credentials: put kaggle.json (kaggle.com > Settings > API) in {d}, "
            "or set KAGGLE_USERNAME and KAGGLE_KEY, or name an account from molremote.toml"
        )
    return creds


# ---------------------------------------------------------------------------------------- client import
@functools.lru_cache(maxsize=1)
def _empty_config_dir() -> str:
    # Given to the client when credentials come from the environment, so it neither reads an unrelated
    # ~/.kaggle/kaggle.json nor creates ~/.kaggle at import.
    return tempfile.mkdtemp(prefix="molremote-kaggle-")


@functools.lru_cache(maxsize=1)
def _api_class() -> type:
    """kaggle's KaggleApi, subclassed so that a username/key account really uses that key.

    Called with the account's environment in place: `import kaggle` authenticates at import and prints a
    help block when it finds nothing, so its output is swallowed."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from kaggle.api.kaggle_api_extended import KaggleApi

    class _Api(KaggleApi):
        _molremote_basic: tuple[str, str] | None = None

        def _authenticate_with_access_token(self) -> bool:
            # kaggle prefers ~/.kaggle/access_token over any key: for a key account, don't look.
            return False if self._molremote_basic else super()._authenticate_with_access_token()

        def build_kaggle_client(self):  # noqa: ANN201
            client = super().build_kaggle_client()
            if self._molremote_basic:
                # kagglesdk's HTTP client would likewise pick up an access_token file before the key we
                # pass; mark it signed in and set HTTP Basic auth ourselves (kagglesdk 0.1.37 internals).
                http = client.http_client()
                http._signed_in = True
                http._init_session()
                http._session.auth = self._molremote_basic
            return client

    return _Api


def _http_message(e: Exception) -> str:
    resp = getattr(e, "response", None)
    msg = str(e)
    if resp is not None:
        try:
            body = resp.json()
            msg = body.get("message") or body.get("error") or msg
        except ValueError:
            pass
        return f"HTTP {resp.status_code}: {msg}"
    return msg


def _safe_join(dest: Path, name: str) -> Path:
    p = Path(name)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise BackendError(f"Kaggle output file name {name!r} points outside {dest}; refused")
    return dest / p


def _score(v: Any) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def parse_kernel_log(text: str) -> str:
    """Kaggle's kernel log is a JSON list of {stream_name, time, data}; return the plain text (as is if not)."""
    try:
        entries = json.loads(text)
    except ValueError:
        return text
    if not isinstance(entries, list):
        return text
    return "".join(str(e.get("data", "")) for e in entries if isinstance(e, dict))


def write_dataset_metadata(folder: Path, ref: str, title: str, license_name: str = "CC0-1.0") -> Path:
    """Write `dataset-metadata.json` for `ref` ("owner/slug") into `folder`; Kaggle wants slug and title
    6-50 characters."""
    owner, _, slug = ref.partition("/")
    if not owner or not (6 <= len(slug) <= 50) or not (6 <= len(title) <= 50):
        raise BackendError(
            f"Kaggle dataset '{ref}' / title {title!r}: need owner/slug with a 6-50 character "
            "slug and a 6-50 character title"
        )
    p = Path(folder) / DATASET_METADATA
    write_bytes(p, json.dumps({"id": ref, "title": title, "licenses": [{"name": license_name}]}, indent=2).encode())
    return p


# ---------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class PushResult:
    ref: str  # "owner/slug": what kernel_status / kernel_output take
    url: str
    version: int | None


@dataclass(frozen=True)
class KernelOutput:
    files: list[Path]  # downloaded output files (the log not included)
    log: Path | None  # <dest>/<slug>.log, Kaggle's raw JSON log (see parse_kernel_log), None if none


@dataclass(frozen=True)
class DatasetResult:
    ref: str
    url: str | None
    created: bool  # True: a new dataset; False: a new version of an existing one


# ---------------------------------------------------------------------------------------- the client
class KaggleClient:
    """`KaggleClient(account=None)`: every Kaggle call molremote makes. Usable plainly
    (`KaggleClient().quota()`) or as a context manager, which keeps the account's environment in place
    for the block (other threads' Kaggle calls wait meanwhile)."""

    push_retry_delay_s = 10.0  # Kaggle's "not found" on a new slug's first push clears within seconds

    def __init__(
        self, account: str | None = None, *, endpoint: str | None = None, push_retry_delay_s: float | None = None
    ):
        self.credentials = resolve_credentials(account)
        self.endpoint = (endpoint or os.environ.get(ENDPOINT_ENV) or "").rstrip("/") or None
        if push_retry_delay_s is not None:
            self.push_retry_delay_s = push_retry_delay_s
        self._api_obj: Any = None
        self._stack: list[contextlib.ExitStack] = []

    def __repr__(self) -> str:
        return f"KaggleClient(account={self.credentials.account!r}, source={self.credentials.source!r})"

    @property
    def username(self) -> str:
        if self.credentials.username:
            return self.credentials.username
        return str(self._api().config_values.get("username") or "")

    # -- environment --------------------------------------------------------------------------------
    def __enter__(self) -> KaggleClient:
        stack = contextlib.ExitStack()
        stack.enter_context(self._activated())
        self._stack.append(stack)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.pop().close()

    @contextlib.contextmanager
    def _activated(self) -> Iterator[None]:
        c = self.credentials
        with _ENV_LOCK:
            saved = {k: os.environ.get(k) for k in _KAGGLE_VARS}
            env_mod: ModuleType | None = None  # kagglesdk.kaggle_env, once imported
            old_endpoint = None
            try:
                for k in _KAGGLE_VARS:
                    os.environ.pop(k, None)
                os.environ["KAGGLE_CONFIG_DIR"] = str(c.config_dir or _empty_config_dir())
                if c.uses_token:
                    os.environ["KAGGLE_API_TOKEN"] = c.token  # type: ignore[assignment]
                else:
                    os.environ["KAGGLE_USERNAME"], os.environ["KAGGLE_KEY"] = c.username, c.key  # type: ignore
                if self.endpoint:
                    os.environ["KAGGLE_API_ENVIRONMENT"] = "LOCALHOST"
                    env_mod = importlib.import_module("kagglesdk.kaggle_env")  # light: no authentication at import

                    old_endpoint = env_mod._env_to_endpoint[env_mod.KaggleEnv.LOCAL]
                    env_mod._env_to_endpoint[env_mod.KaggleEnv.LOCAL] = self.endpoint
                yield
            finally:
                if env_mod is not None:
                    env_mod._env_to_endpoint[env_mod.KaggleEnv.LOCAL] = old_endpoint
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v

    def _api(self) -> Any:
        """An authenticated KaggleApi for this account (built once; call inside `_activated`)."""
        if self._api_obj is None:
            with self._activated():
                api = _api_class()()
                c = self.credentials
                api.config_dir = os.environ["KAGGLE_CONFIG_DIR"]
                api.config = os.path.join(api.config_dir, "kaggle.json")
                api.args = ["--local"] if self.endpoint else []  # the class computed these at import
                api._molremote_basic = None if c.uses_token else (c.username, c.key)
                out = io.StringIO()
                try:
                    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                        api.authenticate()
                except SystemExit:
                    raise BackendError(
                        f"Kaggle rejected the credentials from {c.source} (expired or revoked token?)"
                    ) from None
                except Exception as e:  # noqa: BLE001 - the token check is a network call
                    raise BackendError(f"Kaggle authentication with {c.source} failed: {_http_message(e)}") from None
                self._api_obj = api
        return self._api_obj

    def _call(self, what: str, fn: Callable[[Any], Any]) -> tuple[Any, str]:
        """Run `fn(api)` with this account active; return its result and what the client printed."""
        import requests

        out = io.StringIO()
        with self._activated():
            api = self._api()
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                    result = fn(api)
            except requests.HTTPError as e:
                raise BackendError(f"Kaggle {what}: {_http_message(e)}") from None
            except requests.RequestException as e:
                raise BackendError(
                    f"Kaggle {what}: cannot reach {self.endpoint or 'api.kaggle.com'}: {type(e).__name__}"
                ) from None
            except ValueError as e:  # the client's own checks of metadata files and arguments
                raise BackendError(f"Kaggle {what}: {e}") from None
            finally:
                if out.getvalue().strip():
                    log.debug("kaggle client output during %s:\n%s", what, out.getvalue().rstrip())
        return result, out.getvalue()

    # -- kernels -------------------------------------------------------------------------------------
    def push_kernel(
        self, folder: Path | str, *, timeout_s: int | None = None, accelerator: str | None = None
    ) -> PushResult:
        """Push the kernel in `folder` (kernel-metadata.json + code file); Kaggle starts running it.

        `accelerator` overrides the metadata's machine_shape (e.g. "NvidiaTeslaT4"); `timeout_s` caps the
        session. A "not found" answer (Kaggle's first push of a new slug) is retried once."""
        folder = Path(folder)
        meta_path = folder / KERNEL_METADATA
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise BackendError(f"{meta_path}: no kernel metadata file") from None
        except ValueError as e:
            raise BackendError(f"{meta_path}: not valid JSON: {e}") from None
        kid, title = str(meta.get("id") or ""), meta.get("title")
        if title and "/" in kid:
            from slugify import slugify  # python-slugify, as the kaggle client and server use

            if slugify(title) != kid.split("/")[1].lower():
                raise BackendError(
                    f"{meta_path}: title {title!r} gives the slug '{slugify(title)}' but id is "
                    f"'{kid}'; Kaggle names a new kernel after its title, so make them agree"
                )

        def push(api: Any) -> Any:
            return api.kernels_push(str(folder), str(timeout_s) if timeout_s else None, accelerator)

        resp, _ = self._call(f"push of {folder}", push)
        if resp.error and "not found" in resp.error.lower():
            log.info("Kaggle answered %r for %s; retrying once in %.0f s", resp.error, kid, self.push_retry_delay_s)
            time.sleep(self.push_retry_delay_s)
            resp, _ = self._call(f"push of {folder}", push)
            if resp.error and "not found" in resp.error.lower():
                raise BackendError(
                    f"Kaggle push of {folder} ({kid}): {resp.error} (twice). The owner in "
                    f"'id' must be the account's username ('{self.username}'); for a new "
                    "kernel, retry in a minute"
                )
        if resp.error:
            raise BackendError(f"Kaggle push of {folder} ({kid}): {resp.error}")
        invalid = {
            "dataset_sources": resp.invalid_dataset_sources,
            "competition_sources": resp.invalid_competition_sources,
            "kernel_sources": resp.invalid_kernel_sources,
            "model_sources": resp.invalid_model_sources,
        }
        bad = {k: v for k, v in invalid.items() if v}
        if bad:
            listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in bad.items())
            raise BackendError(
                f"Kaggle pushed {kid} but refused these sources, so the kernel runs without "
                f"them: {listed}. Check the names in {meta_path}"
            )
        return PushResult(self._kernel_ref(resp.ref) or kid, resp.url, resp.version_number)

    @staticmethod
    def _kernel_ref(server_ref: str | None) -> str | None:
        # Kaggle answers "/code/owner/slug" (older servers "/owner/slug"); keep "owner/slug"
        parts = [p for p in (server_ref or "").split("/") if p and p not in ("code", "kernels")]
        return "/".join(parts[-2:]) if len(parts) >= 2 else None

    def kernel_status(self, ref: str) -> tuple[str, str | None]:
        """(status, failure message) of kernel `ref`'s latest version; status is one of KERNEL_STATUSES.

        Right after a push this can still be the previous version's final status: wait for QUEUED or
        RUNNING before trusting a COMPLETE."""
        resp, _ = self._call(f"status of {ref}", lambda api: api.kernels_status(ref))
        return resp.status.name, (resp.failure_message or None)

    def kernel_output(self, ref: str, dest: Path | str, only: list[str] | None = None) -> KernelOutput:
        """Download every output file of kernel `ref`'s latest version into `dest` (all pages), and its
        log to `<dest>/<slug>.log`. `only`: fnmatch patterns of the output names to download (`[]`: the
        log alone), so a status check need not download checkpoints.

        Hand-written over the client's listing call rather than `kernels_output`, which writes an error
        page as the file when a download fails, does not check file names and writes in place."""
        import requests
        from kagglesdk.kernels.types.kernels_api_service import ApiListKernelSessionOutputRequest

        owner, _, slug = ref.partition("/")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)

        def listing(token: str | None) -> Any:
            def go(api: Any) -> Any:
                req = ApiListKernelSessionOutputRequest()
                req.user_name, req.kernel_slug, req.page_size = owner, slug, PAGE_SIZE
                if token:
                    req.page_token = token
                with api.build_kaggle_client() as kaggle:
                    return kaggle.kernels.kernels_api_client.list_kernel_session_output(req)

            return self._call(f"output of {ref}", go)[0]

        files: list[Path] = []
        log_text: str | None = None
        token: str | None = None
        while True:
            page = listing(token)
            log_text = log_text or page.log
            for item in page.files or []:
                if only is not None and not any(fnmatch.fnmatchcase(item.file_name, p) for p in only):
                    continue
                target = _safe_join(dest, item.file_name)
                try:
                    r = requests.get(item.url, timeout=DOWNLOAD_TIMEOUT_S)
                except requests.RequestException as e:
                    raise BackendError(
                        f"Kaggle output {item.file_name} of {ref}: download failed: {type(e).__name__}"
                    ) from None
                if r.status_code != 200:
                    raise BackendError(
                        f"Kaggle output {item.file_name} of {ref}: download answered HTTP {r.status_code}"
                    )
                write_bytes(target, r.content)
                files.append(target)
            token = page.next_page_token
            if not token:
                break
        log_path = None
        if log_text:
            log_path = dest / f"{slug}.log"
            write_bytes(log_path, log_text.encode())
        return KernelOutput(files, log_path)

    # -- datasets ------------------------------------------------------------------------------------
    def dataset_create_or_version(self, folder: Path | str, notes: str, *, public: bool = False) -> DatasetResult:
        """Upload `folder` (with its dataset-metadata.json, see write_dataset_metadata) as a new dataset, or
        as a new version when it exists. Sub-folders are uploaded as zip archives, which Kaggle unpacks."""
        import requests

        folder = Path(folder)
        meta_path = folder / DATASET_METADATA
        try:
            ref = str(json.loads(meta_path.read_text())["id"])
        except FileNotFoundError:
            raise BackendError(
                f"{meta_path}: no dataset metadata file (molremote writes it with write_dataset_metadata)"
            ) from None
        except (ValueError, KeyError, TypeError):
            raise BackendError(f"{meta_path}: not valid dataset metadata (JSON with an 'id')") from None

        def exists(api: Any) -> bool:
            try:
                api.dataset_status(ref)
                return True
            except requests.HTTPError as e:
                if e.response is not None and e.response.status_code == 404:
                    return False
                raise

        found, _ = self._call(f"status of dataset {ref}", exists)
        if found:
            resp, printed = self._call(
                f"new version of dataset {ref}",
                lambda api: api.dataset_create_version(str(folder), notes, quiet=False, dir_mode="zip"),
            )
        else:
            resp, printed = self._call(
                f"creation of dataset {ref}",
                lambda api: api.dataset_create_new(str(folder), public=public, quiet=False, dir_mode="zip"),
            )
        failed = re.findall(r"Upload unsuccessful: (.+)", printed)
        if failed:
            raise BackendError(f"Kaggle dataset {ref}: upload of {', '.join(failed)} failed")
        if resp.error or (resp.status or "").lower() == "error":
            raise BackendError(f"Kaggle dataset {ref}: {resp.error or 'error'}")
        return DatasetResult(resp.ref or ref, resp.url, created=not found)

    # -- quota ---------------------------------------------------------------------------------------
    def quota(self) -> dict[str, Any]:
        """Weekly accelerator quota: {gpu,tpu}_hours_{used,total,left} (floats, None if not reported) and
        refresh_time (ISO string or None)."""
        resp, _ = self._call("quota", lambda api: api.quota_view())
        out: dict[str, Any] = {"refresh_time": resp.quota_refresh_time.isoformat() if resp.quota_refresh_time else None}
        for name, q in (("gpu", resp.gpu_quota), ("tpu", resp.tpu_quota)):
            used = q.time_used.total_seconds() / 3600 if q is not None and q.time_used is not None else None
            total = (
                q.total_time_allowed.total_seconds() / 3600
                if q is not None and q.total_time_allowed is not None
                else None
            )
            out[f"{name}_hours_used"] = used
            out[f"{name}_hours_total"] = total
            out[f"{name}_hours_left"] = max(0.0, total - (used or 0.0)) if total is not None else None
        return out

    # -- competitions --------------------------------------------------------------------------------
    def submit(self, competition: str, file: Path | str, message: str) -> int:
        """Submit `file` to `competition`; return the submission's ref (an integer id)."""
        file = Path(file)
        if not file.is_file():
            raise BackendError(f"{file}: no such submission file")
        resp, _ = self._call(
            f"submission to {competition}",
            lambda api: api.competition_submit(str(file), message, competition, quiet=True),
        )
        if not resp.ref:
            raise BackendError(f"Kaggle submission of {file} to {competition} failed: {resp.message or 'no ref'}")
        return int(resp.ref)

    def submissions(self, competition: str) -> list[dict[str, Any]]:
        """All submissions to `competition`, newest first: dicts with ref, date (ISO), description,
        file_name, status (PENDING/COMPLETE/ERROR), public_score, private_score (floats or None),
        error_description."""
        from kagglesdk.competitions.types.competition_api_service import ApiListSubmissionsRequest

        rows: list[dict[str, Any]] = []
        token: str | None = None
        while True:

            def go(api: Any, token: str | None = token) -> Any:
                req = ApiListSubmissionsRequest()
                req.competition_name, req.page_size = competition, PAGE_SIZE
                if token:
                    req.page_token = token
                with api.build_kaggle_client() as kaggle:
                    return kaggle.competitions.competition_api_client.list_submissions(req)

            resp, _ = self._call(f"submissions of {competition}", go)
            for s in resp.submissions or []:
                rows.append(
                    {
                        "ref": s.ref,
                        "date": s.date.isoformat() if s.date else None,
                        "description": s.description,
                        "file_name": s.file_name,
                        "status": s.status.name,
                        "public_score": _score(s.public_score),
                        "private_score": _score(s.private_score),
                        "error_description": s.error_description,
                    }
                )
            token = resp.next_page_token
            if not token:
                return rows
