"""A loopback Kaggle API server for tests: the real `kaggle==2.2.4` / `kagglesdk 0.1.37` client talks to it.

Wire protocol (read from kagglesdk/kaggle_http_client.py and the generated types): every call is
`POST /api/v1/{service}/{Method}` with a camelCase JSON body; enums travel by name; fields equal to their
default are left out both ways; HTTP Basic auth with username/key; an error is HTTP >= 400 with a JSON
body `{"code": N, "message": "..."}` (kagglesdk raises `HTTPError(message)`). Upload urls (PUT) and
output file urls (GET) are plain unauthenticated urls, served here too.

Hand-written because no maintained fake of the Kaggle API exists; it keeps all state in memory behind one
lock, records every call for assertions, and lets a test script kernel statuses, outputs, submission
scores and failures. Use the `kaggle_server` fixture, or `with KaggleServer() as server:`.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import threading
import uuid
import zipfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest

from tests.servers.loopback import LoopbackServer

KERNEL_STATUSES = (
    "QUEUED",
    "RUNNING",
    "COMPLETE",
    "ERROR",
    "CANCEL_REQUESTED",
    "CANCEL_ACKNOWLEDGED",
    "NEW_SCRIPT",
)
FINAL_STATUSES = ("COMPLETE", "ERROR", "CANCEL_ACKNOWLEDGED")
NOT_FOUND = "Notebook not found"  # the text real Kaggle puts in SaveKernelResponse.error (kaggle-cli #545, #575)
# Each method answers on its own service only (kagglesdk/*/services/*.py: `_client.call(service, method, ...)`).
SERVICES = {
    "SaveKernel": "kernels.KernelsApiService",
    "GetKernelSessionStatus": "kernels.KernelsApiService",
    "ListKernelSessionOutput": "kernels.KernelsApiService",
    "GetAcceleratorQuotaStatistics": "kernels.KernelsApiService",
    "StartBlobUpload": "blobs.BlobApiService",
    "GetDatasetStatus": "datasets.DatasetApiService",
    "CreateDataset": "datasets.DatasetApiService",
    "CreateDatasetVersion": "datasets.DatasetApiService",
    "StartSubmissionUpload": "competitions.CompetitionApiService",
    "CreateSubmission": "competitions.CompetitionApiService",
    "ListSubmissions": "competitions.CompetitionApiService",
    "IntrospectToken": "security.OAuthService",
}
# What SaveKernel accepts (the client checks language / kernel type / pinning too, kaggle_api_extended.py).
LANGUAGES = ("python", "r", "rmarkdown")
KERNEL_TYPES = ("script", "notebook")
PINNING_TYPES = ("original", "latest")
GPU_SHAPES = (
    "NvidiaTeslaP100",
    "NvidiaTeslaT4",
    "NvidiaTeslaT4Highmem",
    "NvidiaTeslaA100",
    "NvidiaL4",
    "NvidiaL4X1",
    "NvidiaH100",
)
TPU_SHAPES = ("TpuV38", "Tpu1VmV38", "TpuV5E8", "TpuV6E8")
RETIRED_SHAPES = {"NvidiaTeslaP100": "NvidiaTeslaT4"}  # substituted silently by Kaggle
SESSION_LIMIT_S = {"cpu": 12 * 3600, "gpu": 12 * 3600, "tpu": 9 * 3600}


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Call:
    """One API call as received: `body` is the decoded JSON, `raw` the exact bytes on the wire."""

    service: str
    method: str
    body: dict
    raw: bytes
    user: str | None


@dataclass
class Kernel:
    owner: str
    slug: str
    title: str
    kernel_id: int
    version: int = 0
    statuses: deque = field(default_factory=deque)  # upcoming (status, failure) answers; the last one sticks
    outputs: dict[str, bytes] = field(default_factory=dict)
    log: str | None = None
    is_private: bool = True
    machine_shape: str | None = None  # after Kaggle's substitution of retired shapes

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"


@dataclass
class Blob:
    name: str
    length: int
    data: bytes | None = None


@dataclass
class DatasetVersion:
    number: int
    notes: str | None
    files: dict[str, bytes]  # path inside the dataset -> content; uploaded .zip archives are unpacked


@dataclass
class Dataset:
    owner: str
    slug: str
    title: str
    license_name: str | None
    is_private: bool
    versions: list[DatasetVersion] = field(default_factory=list)

    @property
    def files(self) -> dict[str, bytes]:
        return self.versions[-1].files


@dataclass
class Submission:
    ref: int
    competition: str
    file_name: str
    content: bytes
    description: str | None
    date: datetime
    submitted_by: str
    status: str = "PENDING"
    public_score: str | None = None
    private_score: str | None = None
    error_description: str | None = None


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _duration(seconds: float) -> str:
    # protobuf Duration JSON ("3600s"); kagglesdk's own serializer drops whole days, so write it by hand
    return f"{int(seconds)}s"


def _compact(d: dict) -> dict:
    """Leave out fields equal to their default, as the real server does."""
    return {k: v for k, v in d.items() if v not in (None, "", [], {}, False, 0)}


def _split_ref(ref: str) -> tuple[str, str]:
    owner, _, slug = ref.partition("/")
    return owner, slug


class KaggleServer:
    """In-memory Kaggle API on 127.0.0.1. Knobs (plain attributes, change them any time):

    - `flaky_new_slugs`: the first SaveKernel of a slug that does not exist yet answers
      `error: "Notebook not found"` and creates nothing (kaggle-cli #345, #575); the next push works.
    - `stale_status_after_push`: right after a re-push, the first status poll still answers the previous
      version's final status (the "previous version still COMPLETE" trap).
    - `page_size_cap`: cap on the page size of ListKernelSessionOutput / ListSubmissions (forces paging).
    - `missing_downloads`: output file names whose url answers 404 (an expired signed url).
    - `competitions`: None accepts any competition name; a set makes others answer 404.
    - `invalid_sources`: dataset/competition/kernel refs that SaveKernel reports back as invalid.
    - `auto_score`: callable(bytes) -> (public, private) run at submit time; else submissions stay PENDING.
    - `gpu_seconds_used` / `gpu_seconds_total` / `tpu_seconds_used` / `tpu_seconds_total`: the weekly quota.
    """

    def __init__(self, username: str = "molremote-tester", key: str = "kaggle-test-key-0123456789"):
        self.username, self.key = username, key
        self.users: dict[str, str] = {username: key}  # username -> API key (HTTP Basic); add more for accounts
        self.tokens: dict[str, str] = {}  # access token -> username (Bearer auth, IntrospectToken)
        self._lock = threading.RLock()
        self.calls: list[Call] = []
        self.pushes: list[dict] = []  # accepted SaveKernel bodies, in order
        self.kernels: dict[str, Kernel] = {}
        self.blobs: dict[str, Blob] = {}
        self.datasets: dict[str, Dataset] = {}
        self.submissions: list[Submission] = []
        self.downloads: list[str] = []  # paths of output files fetched
        self.flaky_new_slugs = False
        self.stale_status_after_push = True
        self.page_size_cap: int | None = None
        self.missing_downloads: set[str] = set()
        self.competitions: set[str] | None = None
        self.invalid_sources: set[str] = set()
        self.auto_score: Callable[[bytes], tuple[str | None, str | None]] | None = None
        self.gpu_seconds_used, self.gpu_seconds_total = 5.5 * 3600, 30 * 3600
        self.tpu_seconds_used, self.tpu_seconds_total = 0.0, 20 * 3600
        self.quota_refresh = datetime(2026, 11, 28, 0, 0, tzinfo=timezone.utc)
        self._failures: dict[str, deque] = {}
        self._scripted: dict[str, list] = {}
        self._flaked: set[str] = set()
        self._ids = itertools.count(1000001)
        self._submission_ids = itertools.count(40000001)
        self._server: LoopbackServer | None = None

    # ---- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> KaggleServer:
        self._server = LoopbackServer(_make_handler(self), poll_s=0.05).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> KaggleServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        return self._server.url

    # ---- scripting -----------------------------------------------------------------------------------
    def fail_next(self, method: str, status: int = 500, message: str = "Internal server error") -> None:
        """The next call of `method` (e.g. "SaveKernel") answers HTTP `status` with `message`."""
        with self._lock:
            self._failures.setdefault(method, deque()).append((status, message))

    def set_statuses(self, ref: str, *statuses: str | tuple[str, str]) -> None:
        """Answers for the next status polls of kernel `ref` ("ERROR" or ("ERROR", "why")); the last sticks.
        Before the kernel's next push it scripts that push instead of the default QUEUED, RUNNING, COMPLETE."""
        seq = [(s, None) if isinstance(s, str) else tuple(s) for s in statuses]
        for s, _ in seq:
            assert s in KERNEL_STATUSES, s
        with self._lock:
            k = self.kernels.get(ref)
            if k is not None and k.version > 0:
                k.statuses = deque(seq)
            else:
                self._scripted[ref] = seq

    def set_output(self, ref: str, files: dict[str, bytes | str], log: str | None = None) -> None:
        """What ListKernelSessionOutput lists for kernel `ref`'s latest version."""
        with self._lock:
            k = self.kernels[ref]
            k.outputs = {n: (c.encode() if isinstance(c, str) else c) for n, c in files.items()}
            k.log = log

    def score(
        self,
        ref: int | None = None,
        *,
        public: str | None = None,
        private: str | None = None,
        status: str = "COMPLETE",
        error: str | None = None,
    ) -> None:
        """Finish scoring submission `ref` (default: the latest)."""
        with self._lock:
            sub = self.submissions[-1] if ref is None else next(s for s in self.submissions if s.ref == ref)
            sub.status, sub.public_score, sub.private_score, sub.error_description = status, public, private, error

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    # ---- dispatch ------------------------------------------------------------------------------------
    def handle_api(self, service: str, method: str, raw: bytes, auth: str | None) -> tuple[int, dict]:
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return 400, {"code": 400, "message": "request body is not JSON"}
        user = self._check_auth(auth)
        with self._lock:
            self.calls.append(Call(service, method, body, raw, user))
            if user is None:
                return 401, {"code": 401, "message": "Unauthenticated: wrong or missing username/key"}
            failures = self._failures.get(method)
            if failures:
                status, message = failures.popleft()
                return status, {"code": status, "message": message}
            handler = getattr(self, f"_api_{method}", None)
            if handler is None or SERVICES.get(method) != service:
                return 404, {"code": 404, "message": f"unknown method {service}/{method}"}
            try:
                return 200, _compact(handler(body, user))
            except ApiError as e:
                return e.status, {"code": e.status, "message": e.message}

    def _check_auth(self, header: str | None) -> str | None:
        if header and header.startswith("Bearer "):
            return self.tokens.get(header[7:])
        if not header or not header.startswith("Basic "):
            return None
        try:
            user, _, key = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if user in self.users and self.users[user] == key else None

    def _api_IntrospectToken(self, body: dict, user: str) -> dict:
        name = self.tokens.get(body.get("token", ""))
        return {"active": True, "username": name} if name else {"active": False}

    # ---- kernels -------------------------------------------------------------------------------------
    def _api_SaveKernel(self, body: dict, user: str) -> dict:
        from slugify import slugify  # python-slugify, a dependency of kaggle; the server names kernels with it

        ref = asked = body.get("slug")
        if not ref and body.get("id"):
            ref = next((k.ref for k in self.kernels.values() if k.kernel_id == body["id"]), None)
        if not ref or "/" not in ref:
            return {"error": NOT_FOUND}
        owner, slug = _split_ref(ref)
        if owner != user:
            return {"error": NOT_FOUND}
        if not body.get("text"):
            return {"error": "The kernel source is empty"}
        shape = self._check_save_fields(body)
        k = self.kernels.get(ref)
        if k is None:
            if self.flaky_new_slugs and ref not in self._flaked:
                self._flaked.add(ref)
                return {"error": NOT_FOUND}
            # a new kernel is named after its title, whatever the id says (the client only warns)
            title = body.get("newTitle") or slug
            slug = slugify(title) if body.get("newTitle") else slug
            ref = f"{owner}/{slug}"
            k = self.kernels.get(ref) or Kernel(owner, slug, title, next(self._ids))
            self.kernels[ref] = k
        elif body.get("newTitle"):
            k.title = body["newTitle"]
        previous = k.statuses[-1] if k.statuses else None
        k.is_private, k.machine_shape = body.get("isPrivate", True), shape
        k.version += 1
        k.outputs, k.log = {}, None
        scripted = self._scripted.pop(ref, None) or self._scripted.pop(asked or "", None)
        if scripted:
            k.statuses = deque(scripted)
        else:
            seq = [("QUEUED", None), ("RUNNING", None), ("COMPLETE", None)]
            if self.stale_status_after_push and previous is not None and previous[0] in FINAL_STATUSES:
                seq.insert(0, previous)
            k.statuses = deque(seq)
        self.pushes.append(body)
        sources = {
            "invalidDatasetSources": body.get("datasetDataSources", []),
            "invalidCompetitionSources": body.get("competitionDataSources", []),
            "invalidKernelSources": body.get("kernelDataSources", []),
            "invalidModelSources": body.get("modelDataSources", []),
        }
        out = {name: [s for s in refs if s in self.invalid_sources] for name, refs in sources.items()}
        out.update(ref=f"/code/{k.ref}", url=f"{self.url}/code/{k.ref}", versionNumber=k.version, kernelId=k.kernel_id)
        return out

    @staticmethod
    def _check_save_fields(body: dict) -> str | None:
        """Refuse what Kaggle refuses (HTTP 400 naming the field); returns the machine shape Kaggle will use."""

        def bad(field_: str, value: Any, allowed: Any) -> ApiError:
            return ApiError(400, f"Invalid {field_} {value!r}: expected one of {list(allowed)}")

        if body.get("language") not in LANGUAGES:
            raise bad("language", body.get("language"), LANGUAGES)
        if body.get("kernelType") not in KERNEL_TYPES:
            raise bad("kernelType", body.get("kernelType"), KERNEL_TYPES)
        if body.get("dockerImagePinningType") not in (None, *PINNING_TYPES):
            raise bad("dockerImagePinningType", body.get("dockerImagePinningType"), PINNING_TYPES)
        gpu, tpu, shape = body.get("enableGpu", False), body.get("enableTpu", False), body.get("machineShape")
        for name in ("enableGpu", "enableTpu", "enableInternet", "isPrivate"):
            if name in body and not isinstance(body[name], bool):
                raise ApiError(400, f"Invalid {name} {body[name]!r}: expected a boolean")
        if gpu and tpu:
            raise ApiError(400, "enableGpu and enableTpu cannot both be set")
        if shape is not None:
            if shape not in GPU_SHAPES + TPU_SHAPES:
                raise bad("machineShape", shape, GPU_SHAPES + TPU_SHAPES)
            if (shape in GPU_SHAPES and tpu) or (shape in TPU_SHAPES and gpu):
                raise ApiError(400, f"machineShape {shape} does not match enableGpu={gpu} enableTpu={tpu}")
        kind = "tpu" if tpu or shape in TPU_SHAPES else "gpu" if gpu or shape in GPU_SHAPES else "cpu"
        timeout = body.get("sessionTimeoutSeconds")
        if timeout is not None and not (isinstance(timeout, int) and 0 < timeout <= SESSION_LIMIT_S[kind]):
            raise ApiError(
                400,
                f"Invalid sessionTimeoutSeconds {timeout!r}: 1..{SESSION_LIMIT_S[kind]} for a {kind.upper()} session",
            )
        return RETIRED_SHAPES.get(shape, shape)

    def _kernel(self, body: dict, user: str) -> Kernel:
        """A kernel to read: someone else's private kernel is answered like a missing one, as on Kaggle."""
        k = self.kernels.get(f"{body.get('userName', '')}/{body.get('kernelSlug', '')}")
        if k is None or (k.is_private and k.owner != user):
            raise ApiError(404, NOT_FOUND)
        return k

    def _page_size(self, body: dict) -> int:
        size = body.get("pageSize") or 20
        return min(size, self.page_size_cap) if self.page_size_cap else size

    def _api_GetKernelSessionStatus(self, body: dict, user: str) -> dict:
        k = self._kernel(body, user)
        status, failure = k.statuses[0] if k.statuses else ("QUEUED", None)
        if len(k.statuses) > 1:
            k.statuses.popleft()
        return {"status": "" if status == "QUEUED" else status, "failureMessage": failure}

    def _api_ListKernelSessionOutput(self, body: dict, user: str) -> dict:
        k = self._kernel(body, user)
        names = sorted(k.outputs)
        start = int(body.get("pageToken") or 0)
        size = self._page_size(body)
        page = names[start : start + size]
        files = [{"fileName": n, "url": f"{self.url}/files/{k.ref}/{k.version}/{quote(n)}"} for n in page]
        more = start + size < len(names)
        return {
            "files": files,
            "log": k.log if start == 0 else None,
            "nextPageToken": str(start + size) if more else None,
        }

    def _api_GetAcceleratorQuotaStatistics(self, body: dict, user: str) -> dict:
        return {
            "quotaRefreshTime": _iso(self.quota_refresh),
            "gpuQuota": {
                "timeUsed": _duration(self.gpu_seconds_used),
                "totalTimeAllowed": _duration(self.gpu_seconds_total),
            },
            "tpuQuota": {
                "timeUsed": _duration(self.tpu_seconds_used),
                "totalTimeAllowed": _duration(self.tpu_seconds_total),
            },
        }

    def serve_file(self, path: str) -> tuple[int, bytes]:
        # /files/<owner>/<slug>/<version>/<name...>
        parts = path.split("/", 5)
        if len(parts) < 6:
            return 404, b"not found"
        _, _, owner, slug, version, name = parts
        with self._lock:
            k = self.kernels.get(f"{owner}/{slug}")
            name = unquote(name)
            if k is None or str(k.version) != version or name not in k.outputs or name in self.missing_downloads:
                return 404, b"<Error><Code>NoSuchKey</Code></Error>"
            self.downloads.append(name)
            return 200, k.outputs[name]

    # ---- blobs ---------------------------------------------------------------------------------------
    def _new_upload(self, name: str, length: int) -> dict:
        token = uuid.uuid4().hex
        self.blobs[token] = Blob(name, length)
        return {"token": token, "createUrl": f"{self.url}/upload/{token}"}

    def _api_StartBlobUpload(self, body: dict, user: str) -> dict:
        if not body.get("name"):
            raise ApiError(400, "blob name is required")
        return self._new_upload(body["name"], body.get("contentLength", 0))

    def receive_upload(self, token: str, data: bytes, content_range: str | None) -> int:
        with self._lock:
            blob = self.blobs.get(token)
            if blob is None:
                return 404
            if content_range and content_range.startswith("bytes */"):  # resume probe
                return 200 if blob.data is not None else 308
            if len(data) != blob.length:
                return 400
            blob.data = data
            return 200

    def _blob_files(self, files: list[dict]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for f in files:
            blob = self.blobs.get(f.get("token", ""))
            if blob is None or blob.data is None:
                raise ApiError(400, f"Invalid or incomplete upload token: {f.get('token')}")
            if blob.name.endswith(".zip"):  # Kaggle unpacks archives; dir_mode="zip" relies on it
                stem = blob.name[:-4]
                with zipfile.ZipFile(io.BytesIO(blob.data)) as z:
                    for info in z.infolist():
                        if not info.is_dir():
                            out[f"{stem}/{info.filename}"] = z.read(info)
            else:
                out[blob.name] = blob.data
        return out

    # ---- datasets ------------------------------------------------------------------------------------
    def _api_GetDatasetStatus(self, body: dict, user: str) -> dict:
        if f"{body.get('ownerSlug')}/{body.get('datasetSlug')}" not in self.datasets:
            raise ApiError(404, "Dataset not found")
        return {"status": "READY"}

    def _api_CreateDataset(self, body: dict, user: str) -> dict:
        owner, slug = body.get("ownerSlug", ""), body.get("slug", "")
        ref = f"{owner}/{slug}"
        if owner != user:
            raise ApiError(403, f"Permission denied: cannot create datasets for {owner}")
        if ref in self.datasets:
            return {"status": "error", "error": f"The dataset {ref} already exists"}
        files = self._blob_files(body.get("files", []))
        ds = Dataset(owner, slug, body.get("title", slug), body.get("licenseName"), body.get("isPrivate", False))
        ds.versions.append(DatasetVersion(1, None, files))
        self.datasets[ref] = ds
        return {"ref": ref, "url": f"{self.url}/datasets/{ref}", "status": "ok"}

    def _api_CreateDatasetVersion(self, body: dict, user: str) -> dict:
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        ds = self.datasets.get(ref)
        if ds is None:
            raise ApiError(404, f"Dataset not found: {ref}")
        if ds.owner != user:
            raise ApiError(403, f"Permission denied on dataset {ref}")
        inner = body.get("body", {})
        files = self._blob_files(inner.get("files", []))
        ds.versions.append(DatasetVersion(len(ds.versions) + 1, inner.get("versionNotes"), files))
        return {"ref": ref, "url": f"{self.url}/datasets/{ref}", "status": "ok"}

    # ---- competitions --------------------------------------------------------------------------------
    def _competition(self, name: str | None) -> str:
        if not name or (self.competitions is not None and name not in self.competitions):
            raise ApiError(404, f"Competition not found: {name}")
        return name

    def _api_StartSubmissionUpload(self, body: dict, user: str) -> dict:
        self._competition(body.get("competitionName"))
        return self._new_upload(body.get("fileName", "submission.csv"), body.get("contentLength", 0))

    def _api_CreateSubmission(self, body: dict, user: str) -> dict:
        comp = self._competition(body.get("competitionName"))
        blob = self.blobs.get(body.get("blobFileTokens", ""))
        if blob is None or blob.data is None:
            raise ApiError(400, "Submission file was not uploaded")
        sub = Submission(
            next(self._submission_ids),
            comp,
            blob.name,
            blob.data,
            body.get("submissionDescription"),
            datetime.now(timezone.utc),
            user,
        )
        if self.auto_score is not None:
            sub.public_score, sub.private_score = self.auto_score(blob.data)
            sub.status = "COMPLETE"
        self.submissions.append(sub)
        return {"message": f"Successfully submitted to {comp}", "ref": sub.ref}

    def _api_ListSubmissions(self, body: dict, user: str) -> dict:
        comp = self._competition(body.get("competitionName"))
        subs = [s for s in reversed(self.submissions) if s.competition == comp]  # newest first
        start = int(body.get("pageToken") or 0)
        size = self._page_size(body)
        page = subs[start : start + size]
        return {
            "submissions": [
                _compact(
                    {
                        "ref": s.ref,
                        "totalBytes": len(s.content),
                        "date": _iso(s.date),
                        "description": s.description,
                        "errorDescription": s.error_description,
                        "fileName": s.file_name,
                        "publicScore": s.public_score,
                        "privateScore": s.private_score,
                        "status": "" if s.status == "PENDING" else s.status,
                        "submittedBy": s.submitted_by,
                        "teamName": s.submitted_by,
                        "url": f"{self.url}/competitions/{comp}/submissions/{s.ref}",
                    }
                )
                for s in page
            ],
            "nextPageToken": str(start + size) if start + size < len(subs) else "",
        }


def _make_handler(server: KaggleServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, payload: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            parts = path.strip("/").split("/")
            raw = self._body()
            if len(parts) != 4 or parts[:2] != ["api", "v1"]:
                self._send(404, json.dumps({"code": 404, "message": f"no route {path}"}).encode())
                return
            status, reply = server.handle_api(parts[2], parts[3], raw, self.headers.get("Authorization"))
            self._send(status, json.dumps(reply).encode())

        def do_PUT(self) -> None:
            path = urlsplit(self.path).path
            data = self._body()
            if not path.startswith("/upload/"):
                self._send(404, b"{}")
                return
            status = server.receive_upload(path[len("/upload/") :], data, self.headers.get("Content-Range"))
            self._send(status, b"{}")

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if not path.startswith("/files/"):
                self._send(404, b"not found", "text/plain")
                return
            status, data = server.serve_file(path)
            self._send(status, data, "application/octet-stream")

    return Handler


@pytest.fixture
def kaggle_server():
    """A started KaggleServer, available to every test (tests/conftest.py registers this module as a plugin);
    point the client at `kaggle_server.url` (see molremote.backends.kaggle_api)."""
    with KaggleServer() as server:
        yield server
