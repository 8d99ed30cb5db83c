"""A loopback Hugging Face Hub server: enough of the wire protocol for the real `huggingface_hub` 2.x client.

Hand-written because no ready-made local Hub fits (olah is a read-only mirror, hf-local-hub needs a binary its
wheel lacks; see shared notes). Speaks: whoami, repo create, preupload (always "regular", so no LFS/Xet),
NDJSON commit (file / deletedFile / deletedFolder, parentCommit check), repo info, tree, resolve (HEAD/GET
with X-Repo-Commit, ETag, Range). Repos are folders under `root/<type>s/<owner>/<name>/` plus a commit list
in `<name>.meta.json`. Past commit ids resolve to the current content (no history is kept).

Fault injection for tests: `state.fail_next("commit", n=2, mode="500" | "drop" | "drop_after")`; "drop" closes
the socket before applying the request, "drop_after" applies it and then closes (a lost response).

    python tests/servers/hub_server.py --port 8765 --root /tmp/hub      # standalone
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

REPO = r"(?P<type>models|datasets|spaces)/(?P<id>[^/]+/[^/]+)"
ROUTES = [  # (method, name, regex over the raw path)
    ("GET", "whoami", r"/api/whoami-v2"),
    ("POST", "create", r"/api/repos/create"),
    ("POST", "preupload", rf"/api/{REPO}/preupload/(?P<rev>[^/]+)"),
    ("POST", "commit", rf"/api/{REPO}/commit/(?P<rev>[^/]+)"),
    ("GET", "tree", rf"/api/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?"),
    ("GET", "info", rf"/api/{REPO}(?:/revision/(?P<rev>[^/]+))?"),
    ("GET", "resolve", r"/(?:(?P<prefix>datasets|spaces)/)?(?P<id>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)"),
]


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.extra = status, code, extra


class HubState:
    """Repos on disk + commit counters, guarded by one lock; fault injection and call counts for tests."""

    def __init__(self, root: Path, token: str | None = None, user: str = "tester"):
        self.root, self.token, self.user = Path(root), token, user
        self.lock = threading.RLock()
        self.calls: Counter = Counter()  # route name -> number of requests seen
        self.faults: list[list] = []  # [route, mode, remaining]
        self.raw: dict[tuple[str, str], dict[str, bytes]] = {}  # crafted entries a filesystem could not hold
        self._oids: dict[tuple, str] = {}

    # --- test helpers -------------------------------------------------------------------------------
    def fail_next(self, route: str = "commit", n: int = 1, mode: str = "500") -> None:
        assert mode in ("500", "drop", "drop_after"), mode
        with self.lock:
            self.faults.append([route, mode, n])

    def take_fault(self, route: str) -> str | None:
        with self.lock:
            for f in self.faults:
                if f[0] == route and f[2] > 0:
                    f[2] -= 1
                    return f[1]
        return None

    def commits(self, repo_id: str, repo_type: str = "model") -> list[dict]:
        return list(self._meta(repo_type + "s", repo_id)["commits"])

    def put_raw(self, repo_id: str, path: str, data: bytes, repo_type: str = "model") -> None:
        """Serve a file under any name (`../x`, `/etc/x`) without touching disk: for path-traversal tests."""
        with self.lock:
            self.raw.setdefault((repo_type + "s", repo_id), {})[path] = data
            self._new_commit(repo_type + "s", repo_id, "raw entry")

    # --- storage ------------------------------------------------------------------------------------
    def folder(self, rtype: str, repo_id: str) -> Path:
        return self.root / rtype / repo_id

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

    def _new_commit(self, rtype: str, repo_id: str, summary: str, ops: list[dict] = ()) -> str:
        meta = self._meta(rtype, repo_id)
        oid = hashlib.sha1(f"{repo_id}:{len(meta['commits'])}:{time.time_ns()}".encode()).hexdigest()
        meta["commits"].append({"oid": oid, "summary": summary, "time": time.time(),
                                "files": [o["value"]["path"] for o in ops if o["key"] == "file"],
                                "deleted": [o["value"]["path"] for o in ops if o["key"] != "file"]})
        self._write_meta(rtype, repo_id, meta)
        return oid

    def head(self, rtype: str, repo_id: str, rev: str = "main") -> str:
        commits = self._meta(rtype, repo_id)["commits"]
        if rev != "main" and rev not in {c["oid"] for c in commits}:
            raise HubError(404, f"Revision {rev} not found", "RevisionNotFound")
        return commits[-1]["oid"]

    def files(self, rtype: str, repo_id: str) -> dict[str, bytes | Path]:
        base = self.folder(rtype, repo_id)
        out: dict[str, bytes | Path] = {
            p.relative_to(base).as_posix(): p for p in sorted(base.rglob("*")) if p.is_file()
        }
        out.update(self.raw.get((rtype, repo_id), {}))
        return out

    def oid(self, item: bytes | Path) -> str:
        if isinstance(item, bytes):
            return git_blob_sha1(item)
        st = item.stat()
        key = (str(item), st.st_mtime_ns, st.st_size)
        if key not in self._oids:
            self._oids[key] = git_blob_sha1(item.read_bytes())
        return self._oids[key]

    def create(self, rtype: str, repo_id: str, private: bool) -> None:
        with self.lock:
            if self._meta_path(rtype, repo_id).is_file():
                raise HubError(409, "You already created this model repo", url=repo_id)  # the client reads url
            self.folder(rtype, repo_id).mkdir(parents=True, exist_ok=True)
            (self.folder(rtype, repo_id) / ".gitattributes").write_text("*.pt filter=lfs diff=lfs merge=lfs -text\n")
            self._write_meta(rtype, repo_id, {"private": private, "commits": []})
            self._new_commit(rtype, repo_id, "initial commit")

    def commit(self, rtype: str, repo_id: str, lines: list[dict]) -> str:
        with self.lock:
            head = self.head(rtype, repo_id)
            base = self.folder(rtype, repo_id)
            header = next((x["value"] for x in lines if x["key"] == "header"), {})
            if header.get("parentCommit") and header["parentCommit"] != head:
                raise HubError(412, f"parent commit {header['parentCommit']} is not the head {head}")
            ops = [x for x in lines if x["key"] != "header"]
            for op in ops:  # validate everything first: a commit applies entirely or not at all
                path = op["value"]["path"]
                if ".." in PurePosixPath(path).parts or path.startswith("/"):
                    raise HubError(400, f"invalid path {path!r}")
                if op["key"] not in ("file", "deletedFile", "deletedFolder"):
                    raise HubError(400, f"unsupported operation {op['key']!r} (this server answers 'regular')")
                if op["key"] == "deletedFile" and not (base / path).is_file():
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
            for op in ops:
                target = base / op["value"]["path"]
                if op["key"] == "file":
                    target.parent.mkdir(parents=True, exist_ok=True)
                    tmp = target.with_name(f".{target.name}.{threading.get_ident()}.tmp")
                    tmp.write_bytes(base64.b64decode(op["value"]["content"]))
                    os.replace(tmp, target)
                elif op["key"] == "deletedFile":
                    target.unlink()
                elif target.is_dir():
                    shutil.rmtree(target)
            return self._new_commit(rtype, repo_id, header.get("summary", ""), ops)


class Handler(BaseHTTPRequestHandler):
    state: HubState  # set on the subclass built by `make_server`
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet: tests read results, not access logs
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if method == "POST" else b""
        url = urlsplit(self.path)
        for m, name, rx in ROUTES:
            match = re.fullmatch(rx, url.path)
            if match and (m == method or (m == "GET" and method == "HEAD")):
                break
        else:
            return self._send(404, {"error": f"no route {method} {url.path}"})
        st = self.state
        st.calls[name] += 1
        fault = st.take_fault(name)
        if fault == "drop":
            self.close_connection = True
            return
        if fault == "500":
            return self._send(500, {"error": "injected failure"})
        try:
            if st.token and self.headers.get("Authorization") != f"Bearer {st.token}":
                raise HubError(401, "Invalid credentials in Authorization header")
            g = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
            status, payload, headers = getattr(self, f"r_{name}")(g, body, parse_qs(url.query), method)
        except HubError as e:
            status, payload, headers = e.status, {"error": str(e), **e.extra}, {"X-Error-Code": e.code} if e.code else {}
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
        self.state.head(g["type"], g["id"])
        files = self.state.files(g["type"], g["id"])
        out = [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
             "oid": self.state.oid(files[f["path"]]) if f["path"] in files else None}
            for f in json.loads(body)["files"]
        ]
        return 200, {"files": out, "commitOid": self.state.head(g["type"], g["id"])}, {}

    def r_commit(self, g, body, q, method):
        lines = [json.loads(x) for x in body.splitlines() if x.strip()]
        oid = self.state.commit(g["type"], g["id"], lines)
        url = f"http://{self.headers['Host']}/{g['id']}/commit/{oid}"
        return 200, {"commitUrl": url, "commitOid": oid, "success": True}, {}

    def r_info(self, g, body, q, method):
        st = self.state
        with st.lock:
            sha = st.head(g["type"], g["id"], g.get("rev", "main"))
            meta = st._meta(g["type"], g["id"])
            siblings = [{"rfilename": p} for p in st.files(g["type"], g["id"])]
        return 200, {"id": g["id"], "sha": sha, "private": meta["private"], "siblings": siblings}, {}

    def r_tree(self, g, body, q, method):
        st = self.state
        with st.lock:
            st.head(g["type"], g["id"], g["rev"])
            files = st.files(g["type"], g["id"])
            prefix = g.get("path", "").strip("/")
            recursive = q.get("recursive", ["false"])[0].lower() == "true"
            dirs = {str(PurePosixPath(p).parents[i]) for p in files for i in range(len(PurePosixPath(p).parts) - 1)}
            if prefix and prefix not in dirs:
                raise HubError(404, f"{prefix} does not exist", "EntryNotFound")
            under = lambda p: not prefix or p.startswith(prefix + "/")  # noqa: E731
            depth = len(PurePosixPath(prefix).parts) if prefix else 0
            keep = lambda p: under(p) and (recursive or len(PurePosixPath(p).parts) == depth + 1)  # noqa: E731
            entries = [{"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0}
                       for d in sorted(dirs) if keep(d)]
            entries += [{"type": "file", "path": p, "oid": st.oid(item),
                         "size": len(item) if isinstance(item, bytes) else item.stat().st_size}
                        for p, item in files.items() if keep(p)]
        return 200, entries, {}

    def r_resolve(self, g, body, q, method):
        st = self.state
        rtype = g.get("prefix") or "models"
        with st.lock:
            sha = st.head(rtype, g["id"], g["rev"])
            item = st.files(rtype, g["id"]).get(g["path"])
            if item is None:
                raise HubError(404, f"{g['path']} not found", "EntryNotFound")
            data = item if isinstance(item, bytes) else item.read_bytes()
        headers = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha1(data)}"', "Content-Type": "application/octet-stream"}
        rng = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if rng and method == "GET":
            start = int(rng.group(1))
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            return 206, data[start:], headers
        headers["Content-Length"] = str(len(data))
        return 200, (b"" if method == "HEAD" else data), headers


class HubServer:
    """Runs a `ThreadingHTTPServer` on 127.0.0.1 in a daemon thread. `url` is the endpoint for `HfApi`."""

    def __init__(self, root: Path, port: int = 0, token: str | None = None, user: str = "tester"):
        self.state = HubState(root, token=token, user=user)
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "HubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--token", default=None, help="require this bearer token (default: accept any)")
    args = ap.parse_args()
    server = HubServer(args.root, port=args.port, token=args.token)
    print(f"hub server on {server.url}, root {args.root}", flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
