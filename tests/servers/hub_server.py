"""A loopback Hugging Face Hub server: the wire protocol the real `huggingface_hub` 2.x client speaks, as strict
as the Hub on the points molremote relies on.

Hand-written because no ready-made local Hub fits (olah is a read-only mirror, hf-local-hub needs a binary its
wheel lacks; see shared notes). What it checks, like the Hub:
- every API call carries `Authorization: Bearer <token>` (401 otherwise); signed LFS URLs need no token and, like
  S3, refuse one;
- preupload answers `lfs` for binary samples, files over 10 MiB and the paths the repo's `.gitattributes` sends to
  LFS (a new repo gets the Hub's default patterns: *.pt, *.parquet, *.bin, ...), `regular` otherwise;
- the git-LFS batch API with the basic transfer: batch -> PUT to a signed URL (size and sha256 checked) -> verify;
  a commit's `lfsFile` op must name an uploaded, verified object, and a `file` op may not carry binary content;
- a commit's first line must be its header; a stale `parentCommit` gets 412;
- repo info / tree / paths-info give each file's git blob id, size and, for LFS files, `lfs: {oid (sha256), size,
  pointerSize}`; resolve answers regular files directly and LFS files with a redirect to another host (the CDN)
  carrying `X-Linked-Etag` (the sha256) and `X-Linked-Size`;
- every commit keeps its own tree: a past commit id resolves to the content it had.
Xet is not spoken: the client uses Xet when `hf_xet` is installed unless `HF_HUB_DISABLE_XET=1` (tests set it);
the Xet token route answers 501 with that advice, so an unexpected Xet upload fails loudly.

Content lives in `root/objects/<sha256>`; each repo's commits (with their trees) in `root/<type>s/<id>.meta.json`.

Fault injection for tests: `state.fail_next(route, n=2, mode="500" | "drop" | "drop_after")`; "drop" closes the
socket before applying the request, "drop_after" applies it and then closes (a lost response).
`state.move_head_before_commit(n)` lets another writer commit just before each of the next n commits (-> 412).

    python -m tests.servers.hub_server --port 8765 --root /tmp/hub --token hf_x     # standalone
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import hmac
import json
import os
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

from tests.servers.loopback import LoopbackServer

REPO = r"(?P<type>models|datasets|spaces)/(?P<id>[^/]+/[^/]+)"
GIT_REPO = r"/(?:(?P<prefix>datasets|spaces)/)?(?P<id>[^/]+/[^/]+?)\.git/info/lfs/objects"
ROUTES = [  # (method, name, regex over the raw path, needs the bearer token)
    ("GET", "whoami", r"/api/whoami-v2", True),
    ("POST", "create", r"/api/repos/create", True),
    ("POST", "preupload", rf"/api/{REPO}/preupload/(?P<rev>[^/]+)", True),
    ("POST", "commit", rf"/api/{REPO}/commit/(?P<rev>[^/]+)", True),
    ("POST", "paths_info", rf"/api/{REPO}/paths-info/(?P<rev>[^/]+)", True),
    ("GET", "xet_token", rf"/api/{REPO}/xet-(?:write|read)-token/(?P<rev>[^/]+)", True),
    ("GET", "tree", rf"/api/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", True),
    ("GET", "info", rf"/api/{REPO}(?:/revision/(?P<rev>[^/]+))?", True),
    ("POST", "lfs_batch", GIT_REPO + "/batch", True),
    ("POST", "lfs_verify", GIT_REPO + "/verify", True),
    ("PUT", "lfs_upload", r"/lfs-upload/(?P<oid>[0-9a-f]{64})", False),  # a signed storage URL, like S3's
    ("GET", "cdn", r"/lfs-cdn/(?P<oid>[0-9a-f]{64})", False),  # a signed CDN URL
    (
        "GET",
        "resolve",
        r"/(?:(?P<prefix>datasets|spaces)/)?(?P<id>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)",
        True,
    ),
]

# The Hub's default .gitattributes for a new repo (the LFS part), as of 2026.
DEFAULT_LFS_PATTERNS = [
    "*.7z",
    "*.arrow",
    "*.bin",
    "*.bz2",
    "*.ckpt",
    "*.ftz",
    "*.gz",
    "*.h5",
    "*.joblib",
    "*.lfs",
    "*.mlmodel",
    "*.model",
    "*.msgpack",
    "*.npy",
    "*.npz",
    "*.onnx",
    "*.ot",
    "*.parquet",
    "*.pb",
    "*.pickle",
    "*.pkl",
    "*.pt",
    "*.pth",
    "*.rar",
    "*.safetensors",
    "saved_model/**/*",
    "*.tar.*",
    "*.tar",
    "*.tflite",
    "*.tgz",
    "*.wasm",
    "*.xz",
    "*.zip",
    "*.zst",
    "*tfevents*",
]
DEFAULT_GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in DEFAULT_LFS_PATTERNS)
REGULAR_MAX_BYTES = 10 * 1024 * 1024  # the Hub sends larger files to LFS whatever their content


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def is_binary(sample: bytes) -> bool:
    """The Hub's test on a file's first 512 bytes: a NUL byte or bytes that are not UTF-8 (a character cut by
    the end of the sample does not count)."""
    if b"\0" in sample:
        return True
    try:
        sample.decode()
    except UnicodeDecodeError as e:
        return e.start < len(sample) - 3
    return False


def lfs_patterns(gitattributes: bytes) -> list[str]:
    return [
        ln.split()[0]
        for ln in gitattributes.decode(errors="replace").splitlines()
        if ln.strip() and not ln.startswith("#") and "filter=lfs" in ln.split()[1:]
    ]


def matches(path: str, pattern: str) -> bool:
    """gitattributes matching, enough for the Hub's defaults: a pattern without '/' matches the base name."""
    if "/" not in pattern:
        return fnmatch.fnmatchcase(PurePosixPath(path).name, pattern)
    if pattern.endswith("/**/*"):
        return path.startswith(pattern[:-5] + "/")
    return fnmatch.fnmatchcase(path, pattern)


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.extra = status, code, extra


class HubState:
    """Repos (commit list with one tree per commit) + content objects, guarded by one lock; fault injection and
    call counts for tests."""

    def __init__(self, root: Path, token: str, user: str = "tester"):
        if not token:
            raise ValueError("the Hub always needs a token: pass token=")
        self.root, self.token, self.user = Path(root), token, user
        self.lock = threading.RLock()
        self.calls: Counter = Counter()  # route name -> number of requests seen
        self.faults: list[list] = []  # [route, mode, remaining]
        self.head_moves = 0  # commits still to be preceded by another writer's commit
        self.secret = os.urandom(16)  # signs the LFS upload and CDN URLs
        (self.root / "objects" / "pending").mkdir(parents=True, exist_ok=True)

    # --- test helpers -------------------------------------------------------------------------------
    def fail_next(self, route: str = "commit", n: int = 1, mode: str = "500") -> None:
        assert mode in ("500", "drop", "drop_after"), mode
        assert route in {r[1] for r in ROUTES}, route
        with self.lock:
            self.faults.append([route, mode, n])

    def take_fault(self, route: str) -> str | None:
        with self.lock:
            for f in self.faults:
                if f[0] == route and f[2] > 0:
                    f[2] -= 1
                    return f[1]
        return None

    def move_head_before_commit(self, n: int = 1) -> None:
        """The next n commit requests each find that someone else committed first (their parent is stale)."""
        with self.lock:
            self.head_moves += n

    def commits(self, repo_id: str, repo_type: str = "model") -> list[dict]:
        """[{oid, summary, time, files (paths added), deleted}] oldest first."""
        return [{k: v for k, v in c.items() if k != "tree"} for c in self._meta(repo_type + "s", repo_id)["commits"]]

    def snapshot(self, repo_id: str, under: str = "", rev: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """{path relative to `under`: content} of the repo at `rev`, as a client would download it."""
        under = under.strip("/")
        with self.lock:
            tree = self.tree_at(repo_type + "s", repo_id, rev)[1]
            return {
                (p[len(under) + 1 :] if under else p): self.read(e)
                for p, e in sorted(tree.items())
                if not under or p.startswith(under + "/")
            }

    def put_raw(self, repo_id: str, path: str, data: bytes, repo_type: str = "model") -> None:
        """Commit a file under any name (`../x`, `/etc/x`), skipping validation: for path-traversal tests."""
        with self.lock:
            tree = {**self.tree_at(repo_type + "s", repo_id)[1], path: self._put_object(data, lfs=False)}
            self._new_commit(repo_type + "s", repo_id, "raw entry", tree, [path], [])

    # --- storage ------------------------------------------------------------------------------------
    def _meta_path(self, rtype: str, repo_id: str) -> Path:
        return self.root / rtype / f"{repo_id}.meta.json"

    def _meta(self, rtype: str, repo_id: str) -> dict:
        p = self._meta_path(rtype, repo_id)
        if not p.is_file():
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return json.loads(p.read_text())

    def _write_meta(self, rtype: str, repo_id: str, meta: dict) -> None:
        p = self._meta_path(rtype, repo_id)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, p)

    def _object(self, sha256: str) -> Path:
        return self.root / "objects" / sha256

    def _put_object(self, data: bytes, lfs: bool) -> dict:
        sha = hashlib.sha256(data).hexdigest()
        if not self._object(sha).is_file():
            tmp = self._object(f"pending/{sha}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self._object(sha))
        return self._entry(sha, len(data), git_blob_sha1(data), lfs)

    @staticmethod
    def _entry(sha256: str, size: int, sha1: str, lfs: bool) -> dict:
        return {
            "sha256": sha256,
            "size": size,
            "lfs": lfs,
            "blob": git_blob_sha1(lfs_pointer(sha256, size)) if lfs else sha1,
        }

    def read(self, entry: dict) -> bytes:
        return self._object(entry["sha256"]).read_bytes()

    def _new_commit(self, rtype: str, repo_id: str, summary: str, tree: dict, added: list, deleted: list) -> str:
        meta = self._meta(rtype, repo_id)
        oid = hashlib.sha1(f"{repo_id}:{len(meta['commits'])}:{time.time_ns()}".encode()).hexdigest()
        meta["commits"].append(
            {"oid": oid, "summary": summary, "time": time.time(), "files": added, "deleted": deleted, "tree": tree}
        )
        self._write_meta(rtype, repo_id, meta)
        return oid

    def tree_at(self, rtype: str, repo_id: str, rev: str = "main") -> tuple[str, dict[str, dict]]:
        """(commit id, {path: entry}) of a revision: `main` or a full commit id."""
        commits = self._meta(rtype, repo_id)["commits"]
        if rev == "main":
            return commits[-1]["oid"], commits[-1]["tree"]
        for c in commits:
            if c["oid"] == rev:
                return c["oid"], c["tree"]
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def head(self, rtype: str, repo_id: str, rev: str = "main") -> str:
        return self.tree_at(rtype, repo_id, rev)[0]

    def create(self, rtype: str, repo_id: str, private: bool) -> None:
        with self.lock:
            if self._meta_path(rtype, repo_id).is_file():
                raise HubError(409, "You already created this model repo", url=repo_id)  # the client reads url
            self._write_meta(rtype, repo_id, {"private": private, "commits": []})
            ga = self._put_object(DEFAULT_GITATTRIBUTES.encode(), lfs=False)
            self._new_commit(rtype, repo_id, "initial commit", {".gitattributes": ga}, [], [])

    def upload_mode(self, tree: dict, path: str, size: int, sample: bytes) -> str:
        ga = tree.get(".gitattributes")
        patterns = lfs_patterns(self.read(ga)) if ga else []
        if size > REGULAR_MAX_BYTES or is_binary(sample) or any(matches(path, p) for p in patterns):
            return "lfs"
        return "regular"

    # --- LFS ----------------------------------------------------------------------------------------
    def sign(self, oid: str) -> str:
        return hmac.new(self.secret, oid.encode(), "sha256").hexdigest()

    def receive_lfs(self, oid: str, sig: str, data: bytes) -> None:
        if not hmac.compare_digest(sig, self.sign(oid)):
            raise HubError(403, "SignatureDoesNotMatch")
        if hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, f"uploaded content does not hash to {oid}")
        tmp = self._object(f"pending/{oid}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self._object(f"pending/{oid}"))

    def verify_lfs(self, oid: str, size: int) -> None:
        with self.lock:
            pending = self._object(f"pending/{oid}")
            if pending.is_file():
                if pending.stat().st_size != size:
                    raise HubError(422, f"LFS object {oid} has size {pending.stat().st_size}, not {size}")
                os.replace(pending, self._object(oid))
            elif not (self._object(oid).is_file() and self._object(oid).stat().st_size == size):
                raise HubError(404, f"LFS object {oid} was not uploaded")

    # --- commit -------------------------------------------------------------------------------------
    def commit(self, rtype: str, repo_id: str, lines: list[dict]) -> str:
        with self.lock:
            if not lines or lines[0].get("key") != "header":
                raise HubError(400, "the first line of a commit payload must be its header")
            header = lines[0].get("value") or {}
            if self.head_moves > 0:  # another machine commits first
                self.head_moves -= 1
                self.put_raw(repo_id, f"elsewhere/{self.calls['commit']}.txt", b"another writer", rtype[:-1])
            head, tree = self.tree_at(rtype, repo_id)
            if header.get("parentCommit") and header["parentCommit"] != head:
                raise HubError(
                    412,
                    f"A commit has happened since. Please refresh and try again "
                    f"(parent {header['parentCommit']}, head {head})",
                )
            tree = dict(tree)
            ops = lines[1:]
            added, deleted, new = [], [], {}
            for op in ops:  # validate everything first: a commit applies entirely or not at all
                key, v = op.get("key"), op.get("value") or {}
                path = v.get("path", "")
                if not path or ".." in PurePosixPath(path).parts or path.startswith("/"):
                    raise HubError(400, f"invalid path {path!r}")
                if key == "file":
                    if v.get("encoding") != "base64":
                        raise HubError(400, f"{path}: unsupported encoding {v.get('encoding')!r}")
                    data = base64.b64decode(v["content"], validate=True)
                    if is_binary(data[:512]) or len(data) > REGULAR_MAX_BYTES:
                        raise HubError(
                            400,
                            f"Your push was rejected because it contains binary files: {path}. "
                            "Please use LFS (or Xet) to store binary files.",
                        )
                    new[path] = data
                elif key == "lfsFile":
                    oid, size = v.get("oid", ""), v.get("size")
                    if v.get("algo") != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", oid):
                        raise HubError(400, f"{path}: lfsFile needs algo sha256 and a sha256 oid")
                    obj = self._object(oid)
                    if not obj.is_file() or (size is not None and obj.stat().st_size != size):
                        raise HubError(422, f"{path}: LFS object {oid} was not uploaded (or not verified)")
                    new[path] = self._entry(oid, obj.stat().st_size, "", lfs=True)
                elif key == "deletedFile":
                    if path not in tree:
                        raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                elif key != "deletedFolder":
                    raise HubError(400, f"unsupported operation {key!r}")
            for op in ops:
                key, path = op["key"], op["value"]["path"]
                if key in ("file", "lfsFile"):
                    item = new[path]
                    tree[path] = self._put_object(item, lfs=False) if isinstance(item, bytes) else item
                    added.append(path)
                elif key == "deletedFile":
                    del tree[path]
                    deleted.append(path)
                else:
                    for p in [p for p in tree if p.startswith(path.rstrip("/") + "/")]:
                        del tree[p]
                    deleted.append(path)
            return self._new_commit(rtype, repo_id, header.get("summary", ""), tree, added, deleted)


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = b""
        while True:
            n = int(handler.rfile.readline().split(b";")[0], 16)
            if n == 0:
                handler.rfile.readline()
                return out
            out += handler.rfile.read(n)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


class Handler(BaseHTTPRequestHandler):
    state: HubState  # set on the subclass built by `HubServer`
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet: tests read results, not access logs
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        body = read_body(self) if method in ("POST", "PUT") else b""
        url = urlsplit(self.path)
        for route in ROUTES:
            match = re.fullmatch(route[2], url.path)
            if match and (route[0] == method or (route[0] == "GET" and method == "HEAD")):
                break
        else:
            return self._send(404, {"error": f"no route {method} {url.path}"})
        _, name, _, auth = route
        st = self.state
        st.calls[name] += 1
        fault = st.take_fault(name)
        if fault == "drop":
            self.close_connection = True
            return
        if fault == "500":
            return self._send(500, {"error": "injected failure"})
        try:
            given = self.headers.get("Authorization")
            if auth and given != f"Bearer {st.token}":
                raise HubError(
                    401, "Invalid credentials in Authorization header" if given else "Authorization header is required"
                )
            if not auth and given:  # S3 and the CDN refuse a second auth mechanism; the token must not leak there
                raise HubError(400, "Only one auth mechanism allowed")
            g = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
            status, payload, headers = getattr(self, f"r_{name}")(g, body, parse_qs(url.query), method)
        except HubError as e:
            status, payload, headers = (
                e.status,
                {"error": str(e), **e.extra},
                {"X-Error-Code": e.code} if e.code else {},
            )
            headers["X-Error-Message"] = str(e)
        if fault == "drop_after":
            self.close_connection = True
            return
        self._send(status, payload, headers, head=method == "HEAD")

    def _send(self, status: int, payload, headers: dict | None = None, head: bool = False) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        headers = dict(headers or {})
        length = headers.pop("Content-Length", str(len(data)))  # HEAD: the size of what GET would send
        for k, v in headers.items():
            self.send_header(k, v)
        if not isinstance(payload, bytes):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", length)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _cdn_base(self) -> str:
        """Signed URLs point at another host name (the CDN / S3): the client must not send its token there."""
        return f"http://localhost:{self.server.server_address[1]}"

    # --- routes: each returns (status, payload, headers) ---------------------------------------------
    def r_whoami(self, g, body, q, method):
        return 200, {"type": "user", "name": self.state.user, "orgs": [], "auth": {"type": "access_token"}}, {}

    def r_create(self, g, body, q, method):
        req = json.loads(body)
        repo_id = f"{req.get('organization') or self.state.user}/{req['name']}"
        rtype = (req.get("type") or "model") + "s"
        prefix = "" if rtype == "models" else rtype + "/"
        url = f"http://{self.headers['Host']}/{prefix}{repo_id}"
        try:
            self.state.create(rtype, repo_id, req.get("private", req.get("visibility") == "private"))
        except HubError as e:
            e.extra["url"] = url
            raise
        return 200, {"url": url, "name": repo_id}, {}

    def r_preupload(self, g, body, q, method):
        st = self.state
        with st.lock:
            tree = st.tree_at(g["type"], g["id"], g["rev"])[1]
            out = []
            for f in json.loads(body)["files"]:
                mode = st.upload_mode(tree, f["path"], f["size"], base64.b64decode(f["sample"]))
                have = tree.get(f["path"])
                oid = None if have is None else have["sha256"] if mode == "lfs" else git_blob_sha1(st.read(have))
                out.append({"path": f["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return 200, {"files": out, "commitOid": st.head(g["type"], g["id"], g["rev"])}, {}

    def r_commit(self, g, body, q, method):
        lines = [json.loads(x) for x in body.splitlines() if x.strip()]
        oid = self.state.commit(g["type"], g["id"], lines)
        url = f"http://{self.headers['Host']}/{g['id']}/commit/{oid}"
        return 200, {"commitUrl": url, "commitOid": oid, "success": True}, {}

    def r_info(self, g, body, q, method):
        st = self.state
        with st.lock:
            sha, tree = st.tree_at(g["type"], g["id"], g.get("rev", "main"))
            meta = st._meta(g["type"], g["id"])
        return (
            200,
            {"id": g["id"], "sha": sha, "private": meta["private"], "siblings": [{"rfilename": p} for p in tree]},
            {},
        )

    @staticmethod
    def _file(path: str, e: dict) -> dict:
        out = {"type": "file", "path": path, "oid": e["blob"], "size": e["size"]}
        if e["lfs"]:
            out["lfs"] = {
                "oid": e["sha256"],
                "size": e["size"],
                "pointerSize": len(lfs_pointer(e["sha256"], e["size"])),
            }
        return out

    @staticmethod
    def _dirs(tree: dict) -> set[str]:
        return {str(PurePosixPath(p).parents[i]) for p in tree for i in range(len(PurePosixPath(p).parts) - 1)}

    def r_tree(self, g, body, q, method):
        st = self.state
        with st.lock:
            tree = st.tree_at(g["type"], g["id"], g["rev"])[1]
        prefix = g.get("path", "").strip("/")
        recursive = q.get("recursive", ["false"])[0].lower() == "true"
        dirs = self._dirs(tree)
        if prefix and prefix not in dirs:
            raise HubError(404, f"{prefix} does not exist", "EntryNotFound")
        under = lambda p: not prefix or p.startswith(prefix + "/")  # noqa: E731
        depth = len(PurePosixPath(prefix).parts) if prefix else 0
        keep = lambda p: under(p) and (recursive or len(PurePosixPath(p).parts) == depth + 1)  # noqa: E731
        entries = [
            {"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0}
            for d in sorted(dirs)
            if keep(d)
        ]
        entries += [self._file(p, e) for p, e in tree.items() if keep(p)]
        return 200, entries, {}

    def r_paths_info(self, g, body, q, method):
        form = parse_qs(body.decode())
        st = self.state
        with st.lock:
            tree = st.tree_at(g["type"], g["id"], g["rev"])[1]
        dirs, out = self._dirs(tree), []
        for p in form.get("paths", []):
            p = p.strip("/")
            if p in tree:
                out.append(self._file(p, tree[p]))
            elif p in dirs:
                out.append({"type": "directory", "path": p, "oid": hashlib.sha1(p.encode()).hexdigest(), "size": 0})
        return 200, out, {}  # missing paths are left out, as on the Hub

    def r_xet_token(self, g, body, q, method):
        raise HubError(501, "this loopback Hub speaks git-LFS, not Xet: set HF_HUB_DISABLE_XET=1")

    def r_lfs_batch(self, g, body, q, method):
        req = json.loads(body)
        if req.get("operation") != "upload" or "basic" not in req.get("transfers", ["basic"]):
            raise HubError(422, f"only the basic upload transfer is served, not {req.get('transfers')}")
        if req.get("hash_algo", "sha256") != "sha256":
            raise HubError(422, f"unsupported hash_algo {req['hash_algo']!r}")
        st = self.state
        st.head(g.get("prefix") or "models", g["id"])  # the repo must exist
        objects = []
        for o in req.get("objects", []):
            oid, size = o.get("oid", ""), o.get("size")
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int):
                objects.append(
                    {"oid": str(oid), "size": int(size or 0), "error": {"code": 422, "message": "invalid oid or size"}}
                )
                continue
            obj = {"oid": oid, "size": size, "authenticated": True}
            have = st._object(oid)
            if not (have.is_file() and have.stat().st_size == size):  # already stored: nothing to upload
                base = self._cdn_base()
                host = f"http://{self.headers['Host']}"
                prefix = f"{g['prefix']}/" if g.get("prefix") else ""
                obj["actions"] = {
                    "upload": {"href": f"{base}/lfs-upload/{oid}?X-Amz-Signature={st.sign(oid)}", "header": {}},
                    "verify": {"href": f"{host}/{prefix}{g['id']}.git/info/lfs/objects/verify", "header": {}},
                }
            objects.append(obj)
        return 200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}, {}

    def r_lfs_upload(self, g, body, q, method):
        self.state.receive_lfs(g["oid"], q.get("X-Amz-Signature", [""])[0], body)
        return 200, b"", {}

    def r_lfs_verify(self, g, body, q, method):
        req = json.loads(body)
        self.state.verify_lfs(req.get("oid", ""), req.get("size", -1))
        return 200, {"success": True}, {}

    def r_cdn(self, g, body, q, method):
        st = self.state
        if not hmac.compare_digest(q.get("X-Amz-Signature", [""])[0], st.sign(g["oid"])):
            raise HubError(403, "SignatureDoesNotMatch")
        p = st._object(g["oid"])
        if not p.is_file():
            raise HubError(404, "NoSuchKey")
        return self._content(p.read_bytes(), {"ETag": f'"{g["oid"]}"'}, method)

    def _content(self, data: bytes, headers: dict, method: str):
        headers["Content-Type"] = "application/octet-stream"
        rng = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if rng and method == "GET":
            start = int(rng.group(1))
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            return 206, data[start:], headers
        headers["Content-Length"] = str(len(data))
        return 200, (b"" if method == "HEAD" else data), headers

    def r_resolve(self, g, body, q, method):
        st = self.state
        rtype = g.get("prefix") or "models"
        with st.lock:
            sha, tree = st.tree_at(rtype, g["id"], g["rev"])
            e = tree.get(g["path"])
            if e is None:
                raise HubError(404, f"{g['path']} not found", "EntryNotFound")
            data = None if e["lfs"] else st.read(e)
        headers = {"X-Repo-Commit": sha}
        if e["lfs"]:  # the Hub redirects LFS files to the CDN; the file's own etag and size ride on the redirect
            cdn = f"{self._cdn_base()}/lfs-cdn/{e['sha256']}?X-Amz-Signature={st.sign(e['sha256'])}"
            headers.update(
                {
                    "Location": cdn,
                    "ETag": f'"{e["blob"]}"',
                    "X-Linked-Etag": f'"{e["sha256"]}"',
                    "X-Linked-Size": str(e["size"]),
                }
            )
            return 302, b"", headers
        headers["ETag"] = f'"{e["blob"]}"'
        return self._content(data, headers, method)


class HubServer(LoopbackServer):
    """Runs a `ThreadingHTTPServer` on 127.0.0.1 in a daemon thread. `url` is the endpoint for `HfApi`; every
    API call must carry `token`."""

    def __init__(self, root: Path, *, token: str, port: int = 0, user: str = "tester"):
        self.state = HubState(root, token=token, user=user)
        super().__init__(type("BoundHandler", (Handler,), {"state": self.state}), port=port)

    def __enter__(self) -> HubServer:
        return self.start()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--token", required=True, help="the bearer token every API call must carry")
    args = ap.parse_args()
    server = HubServer(args.root, port=args.port, token=args.token)
    print(f"hub server on {server.url}, root {args.root}", flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
