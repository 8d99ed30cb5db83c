"""A store in a private Hugging Face Hub repo, one per project: `hf://owner/repo` -> files `runs/<key>/...`.

Token and endpoint are found as huggingface_hub finds them (HF_TOKEN, then the token cache; HF_ENDPOINT),
with explicit `token=` / `endpoint=` overrides. HF_ENDPOINT is read here at construction, not at import of
huggingface_hub, so setting it after start-up still works. huggingface_hub is imported lazily: commands that
never touch the Hub do not pay for it.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .base import (
    KEEP_IN_STORE,
    MANIFEST,
    RUNS_PREFIX,
    FileInfo,
    Store,
    Transfer,
    check_conflict,
    check_only,
    dest_targets,
    excluded,
    guard_local_changes,
    hash_file,
    in_subset,
    keys_from_manifest_paths,
    local_manifest,
    manifest_last,
    match_experiment,
    safe_relpath,
    scan_run_dir,
    validate_key,
    write_sync_record,
)

log = logging.getLogger(__name__)

# A push re-reads the repo head and retries when another machine committed in between (the commit names
# its parent, so the Hub refuses it instead of racing the conflict check). 5 rounds: several runs of one
# project share the repo and may commit close together.
HEAD_MOVED_RETRIES = 5


class _InvalidJson(StoreError):
    pass


def _transport_error(exc: BaseException | None) -> bool:
    """A connection dropped or timed out (httpx2, the client's transport), as opposed to an answer."""
    try:
        from httpx2 import TransportError
    except ImportError:  # pragma: no cover - huggingface_hub 2.x brings httpx2
        return False
    return isinstance(exc, TransportError)


def _same(local: FileInfo, entry: Any) -> bool:
    """Does a Hub tree entry hold exactly the local file? LFS/Xet entries carry a sha256, regular ones a git
    blob id."""
    if entry is None or entry.size != local.size:
        return False
    if entry.lfs is not None:
        return entry.lfs.sha256 == local.sha256
    return entry.blob_id == local.git_sha1


class HubStore(Store):
    def __init__(self, repo: str, *, endpoint: str | None = None, token: str | None = None, repo_type: str = "model"):
        try:
            from huggingface_hub import HfApi
        except ImportError as e:  # pragma: no cover - depends on the install
            raise StoreError("an hf:// store needs huggingface_hub: pip install 'molremote[remote]'") from e
        self._repo, self.repo_type = repo.strip("/"), repo_type
        if not self._repo or self._repo.count("/") > 1:
            raise StoreError(f"invalid Hub store {repo!r}: expected hf://owner/repo (or hf://repo for your user)")
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None
        self.api = HfApi(endpoint=self.endpoint, token=token)
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        self.url = f"hf://{prefix}{self._repo}"
        self._repo_id: str | None = self._repo if "/" in self._repo else None
        self._created = False

    # --- plumbing ------------------------------------------------------------------------------------
    @property
    def repo_id(self) -> str:
        if self._repo_id is None:
            with self._errors("whoami"):
                self._repo_id = f"{self.api.whoami(cache=True)['name']}/{self._repo}"
        return self._repo_id

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Client and network failures become StoreErrors that name the store and the step."""
        from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

        try:
            yield
        except StoreError:
            raise
        except LocalTokenNotFoundError as e:
            raise StoreError(f"{self.url}: {what} needs a Hub token: set HF_TOKEN or run `hf auth login`") from e
        except HfHubHTTPError as e:
            status = e.response.status_code if e.response is not None else None
            hint = " (check HF_TOKEN: missing, invalid or without write access)" if status in (401, 403) else ""
            raise StoreError(f"{self.url}: {what} failed: HTTP {status}{hint}: {str(e).splitlines()[0]}") from e
        except (OSError, ValueError) as e:
            raise StoreError(f"{self.url}: {what} failed: {type(e).__name__}: {e}") from e
        except Exception as e:  # httpx2 transport errors and the like: still a store failure, retryable
            raise StoreError(f"{self.url}: {what} failed: {type(e).__name__}: {e}") from e

    def _head(self) -> str | None:
        """Commit id of the repo head, None if the repo does not exist."""
        from huggingface_hub.errors import RepositoryNotFoundError

        with self._errors("reading the repo"):
            try:
                return self.api.repo_info(self.repo_id, repo_type=self.repo_type).sha
            except RepositoryNotFoundError:
                return None

    def _tree(self, path: str, revision: str) -> dict[str, Any]:
        """{path relative to `path`: RepoFile} for every file under `path` ({} if there is none)."""
        from huggingface_hub import RepoFile
        from huggingface_hub.errors import RemoteEntryNotFoundError

        with self._errors(f"listing {path}"):
            try:
                entries = list(
                    self.api.list_repo_tree(
                        self.repo_id, path_in_repo=path, recursive=True, revision=revision, repo_type=self.repo_type
                    )
                )
            except RemoteEntryNotFoundError:
                return {}
        return {
            e.path[len(path) + 1 :]: e for e in entries if isinstance(e, RepoFile) and e.path.startswith(path + "/")
        }

    def _download(self, filename: str, revision: str | None, local_dir: Path) -> Path:
        with self._errors(f"downloading {filename}"):
            return Path(
                self.api.hf_hub_download(
                    self.repo_id, filename, revision=revision, local_dir=local_dir, repo_type=self.repo_type
                )
            )

    def _read_json(self, filename: str, revision: str | None) -> dict | None:
        """A stored JSON file, None if absent (HTTP 404 only: a network failure is an error, never 'absent')."""
        from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError

        with tempfile.TemporaryDirectory(prefix="molremote-hub-") as tmp:
            try:
                p = self._download(filename, revision, Path(tmp))
            except StoreError as e:
                if isinstance(e.__cause__, (RemoteEntryNotFoundError, RepositoryNotFoundError)):
                    return None
                raise
            try:
                d = json.loads(p.read_text())
            except json.JSONDecodeError as e:
                raise _InvalidJson(f"{self.url}: {filename} is not valid JSON ({e})") from e
        if not isinstance(d, dict):
            raise _InvalidJson(f"{self.url}: {filename} does not hold a JSON object")
        return d

    def _ensure_repo(self) -> None:
        if not self._created:
            with self._errors("creating the repo"):
                self.api.create_repo(self.repo_id, private=True, exist_ok=True, repo_type=self.repo_type)
            self._created = True

    # --- Store ---------------------------------------------------------------------------------------
    def push(self, run_dir: Path, key: str, *, force: bool = False, transfer: Transfer | None = None) -> dict[str, Any]:
        from huggingface_hub.errors import HfHubHTTPError

        key, run_dir = validate_key(key), Path(run_dir)
        transfer = transfer or Transfer()
        mine = local_manifest(run_dir)
        prefix = f"{RUNS_PREFIX}/{key}"
        self._ensure_repo()
        lost: dict[str, Any] | None = None  # an attempt whose commit may have landed with its reply lost
        for _ in range(HEAD_MOVED_RETRIES):
            head = self._head()
            if head is None:
                raise StoreError(f"{self.url}: the repo vanished right after it was created")
            stored = self._tree(prefix, head)
            stored_manifest = self._read_json(f"{prefix}/{MANIFEST}", head) if MANIFEST in stored else None
            check_conflict(key, mine, stored_manifest, self.url, force)
            local = scan_run_dir(run_dir)
            changed = [r for r, fi in local.items() if not _same(fi, stored.get(r))]
            deleted = sorted(
                r for r in stored if r not in local and not r.startswith(KEEP_IN_STORE) and not excluded(r)
            )
            summary: dict[str, Any] = {
                "key": key,
                "store": self.url,
                "uploaded": changed,
                "deleted": deleted,
                "unchanged": len(local) - len(changed),
                "bytes": sum(local[r].size for r in changed),
                "commit": None,
            }
            if not changed and not deleted:
                # nothing left to do; if an earlier attempt's reply was lost, its commit is what landed
                write_sync_record(run_dir, {rel: fi.sha256 for rel, fi in local.items()}, self.url)
                return {**lost, "commit": head} if lost else summary
            transfer.start(key, len(changed), summary["bytes"])  # one commit: advances when it lands
            try:
                with self._errors(f"pushing {key}"):
                    info = self.api.upload_folder(
                        repo_id=self.repo_id,
                        repo_type=self.repo_type,
                        folder_path=run_dir,
                        path_in_repo=prefix,
                        # escaped: a file name holding '*', '?' or '[' must match only itself
                        allow_patterns=[glob.escape(r) for r in changed],
                        delete_patterns=[glob.escape(r) for r in deleted] or None,
                        parent_commit=head,
                        commit_message=f"molremote push {key}: {len(changed)} changed, {len(deleted)} deleted",
                    )
            except StoreError as e:
                cause = e.__cause__
                status = (
                    cause.response.status_code
                    if isinstance(cause, HfHubHTTPError) and cause.response is not None
                    else None
                )
                # Re-read and try again when the head moved (409/412) or the commit failed in transit (5xx, a
                # dropped connection): with hf_xet installed the client retries a commit itself, without it
                # (HF_HUB_DISABLE_XET=1, the LFS path) it does not. The re-read makes this safe: a commit that
                # landed with its reply lost leaves nothing to upload, and parent_commit prevents a duplicate.
                if status in (409, 412) or (status or 0) >= 500 or _transport_error(cause):
                    log.info("%s: commit of %s failed (%s); re-reading the repo", self.url, key, status or cause)
                    lost = summary
                    continue
                raise
            summary["commit"] = info.oid
            for rel in changed:
                transfer.advance(rel, local[rel].size)
            write_sync_record(run_dir, {rel: fi.sha256 for rel, fi in local.items()}, self.url)
            log.info(
                "pushed %s to %s: %d uploaded, %d deleted (commit %s)",
                key,
                self.url,
                len(changed),
                len(deleted),
                info.oid,
            )
            return summary
        raise StoreError(f"{self.url}: the repo kept changing during {HEAD_MOVED_RETRIES} attempts to push {key}")

    def pull(
        self,
        key: str,
        dest: Path,
        only: list[str] | None = None,
        *,
        force: bool = False,
        transfer: Transfer | None = None,
    ) -> Path:
        key, only = validate_key(key), check_only(only)
        transfer = transfer or Transfer()
        prefix = f"{RUNS_PREFIX}/{key}"
        head = self._head()
        stored = self._tree(prefix, head) if head else {}
        if MANIFEST not in stored:
            raise StoreError(f"run {key} is not in store {self.url}")
        where = f"{self.url} run {key}"
        for rel in stored:  # every stored name is checked, selected or not: a crafted repo is refused whole
            safe_relpath(rel, where=where)
        rels = [r for r in stored if in_subset(r, only) and not excluded(r)]
        dest = Path(dest)
        targets = dest_targets(dest, rels, where=where)
        same = {
            r: hash_file(targets[r]).sha256
            for r in rels
            if targets[r].is_file() and _same(hash_file(targets[r]), stored[r])
        }
        fetch = [r for r in manifest_last(rels) if r not in same]
        if not fetch:
            write_sync_record(dest, same, self.url, merge=True)
            return dest
        guard_local_changes(dest, targets, fetch, force, where)
        dest.mkdir(parents=True, exist_ok=True)
        # Download everything into a staging folder beside dest, check it, then move it in: a failure
        # half-way leaves dest as it was; the final renames stay on one filesystem.
        staging = Path(tempfile.mkdtemp(prefix=".molremote-pull-", dir=dest.resolve().parent))
        try:
            got, hashes = {}, {}
            transfer.start(key, len(fetch), sum(stored[r].size for r in fetch))
            for rel in fetch:
                p = self._download(f"{prefix}/{rel}", head, staging)
                fi = hash_file(p)
                if not _same(fi, stored[rel]):
                    raise StoreError(
                        f"{where}: downloaded {rel} does not match the stored size/hash "
                        "(sha256 for LFS files, git blob id for small ones); nothing was written"
                    )
                got[rel], hashes[rel] = p, fi.sha256
                transfer.advance(rel, fi.size)
            for rel in fetch:
                targets[rel].parent.mkdir(parents=True, exist_ok=True)
                os.replace(got[rel], targets[rel])
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        write_sync_record(dest, {**same, **hashes}, self.url, merge=True)
        return dest

    def list_runs(self, experiment: int | str | None = None) -> list[dict[str, Any]]:
        head = self._head()
        if head is None:
            return []
        out = []
        for key in keys_from_manifest_paths(list(self._tree(RUNS_PREFIX, head))):
            if not match_experiment(key, experiment):
                continue
            try:
                validate_key(key)
                out.append({"key": key, "manifest": self._read_json(f"{RUNS_PREFIX}/{key}/{MANIFEST}", head)})
            except _InvalidJson as e:
                log.warning("skipping %s in %s: %s", key, self.url, e)
            except StoreError as e:
                if e.__cause__ is not None:  # a network/HTTP failure: the listing would be wrong, say so
                    raise
                log.warning("skipping %s in %s: %s", key, self.url, e)
        return out

    def read_manifest(self, key: str) -> dict | None:
        return self._read_json(f"{RUNS_PREFIX}/{validate_key(key)}/{MANIFEST}", None)
