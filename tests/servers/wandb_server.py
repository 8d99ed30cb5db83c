"""A loopback W&B server: what the real `wandb` 0.31 client (its Go `wandb-core` does the HTTP) needs for a run.

No local W&B server runs without Docker (shared notes), so this speaks the part of the protocol one run uses:
- auth: every call carries HTTP Basic `api:<key>` (401 otherwise);
- GraphQL at `POST /graphql`, dispatched on the operation name: `Viewer`, `UpsertBucket` (the run: config, tags,
  group, job type), `RunResumeStatus` (where a resumed run's history, events and console output continue),
  `CreateRunFiles` (signed upload URLs), server-info/feature probes answered empty;
- `POST /files/<entity>/<project>/<run>/file_stream`: history, summary, events and console lines as JSON batches
  `{files: {name: {offset, content: [lines]}}, complete, exitcode}`; each batch's offset must continue the file
  where it stands (a resumed run that restarted its history at 0 is refused with 400, as it would double rows);
- `PUT /upload/<entity>/<project>/<run>/<file>?sig=...`: the signed upload URLs, no token (one refused);
- `POST /sdk/otel/v1/metrics` (telemetry) answered 200.
Unknown GraphQL operations are recorded in `state.unknown` and answered with an error, so a client upgrade that
needs more shows up in tests instead of passing silently.

State for tests: `state.runs[(entity, project, run_id)]` -> Run (config, tags, history rows, summary, console
lines, uploaded files, upserts, exit code).

    python -m tests.servers.wandb_server --port 8766 --key $(python -c 'print("k"*40)')    # standalone
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.servers.loopback import LoopbackServer

ENTITY = "tester"
HISTORY, SUMMARY, EVENTS, OUTPUT = "wandb-history.jsonl", "wandb-summary.json", "wandb-events.jsonl", "output.log"


@dataclass
class Run:
    entity: str
    project: str
    name: str
    storage_id: str
    config: dict = field(default_factory=dict)
    tags: list = field(default_factory=list)
    group: str | None = None
    job_type: str | None = None
    display_name: str | None = None
    upserts: int = 0
    streams: dict[str, list[str]] = field(default_factory=dict)  # file_stream files: lines
    files: dict[str, bytes] = field(default_factory=dict)  # uploaded through CreateRunFiles URLs
    exitcode: int | None = None
    completes: int = 0  # file_stream batches with complete=true (one per finished session)

    @property
    def history(self) -> list[dict]:
        return [json.loads(x) for x in self.streams.get(HISTORY, [])]

    @property
    def summary(self) -> dict:
        lines = self.streams.get(SUMMARY, [])
        return json.loads(lines[-1]) if lines else {}

    @property
    def output(self) -> list[str]:
        return self.streams.get(OUTPUT, [])


class WandbError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class WandbState:
    def __init__(self, api_key: str, entity: str = ENTITY):
        if len(api_key) < 40:
            raise ValueError("W&B API keys are at least 40 characters")
        self.api_key, self.entity = api_key, entity
        self.lock = threading.RLock()
        self.runs: dict[tuple[str, str, str], Run] = {}
        self.calls: Counter = Counter()  # "graphql:<Operation>", "file_stream", "upload", "otel"
        self.unknown: list[str] = []
        self.bodies: list[bytes] = []  # every authenticated request body: tests scan them for secrets
        self.secret = os.urandom(16)

    def run(self, project: str, name: str, entity: str | None = None, create: bool = False) -> Run | None:
        key = (entity or self.entity, project, name)
        with self.lock:
            if key not in self.runs and create:
                sid = base64.b64encode(f"Run:v1:{name}:{project}:{key[0]}".encode()).decode()
                self.runs[key] = Run(key[0], project, name, sid)
            return self.runs.get(key)

    def sign(self, path: str) -> str:
        return hmac.new(self.secret, path.encode(), "sha256").hexdigest()


def _json(v: Any) -> Any:
    """GraphQL JSONString arguments arrive as strings."""
    return json.loads(v) if isinstance(v, str) and v else v


class Handler(BaseHTTPRequestHandler):
    state: WandbState
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while (n := int(self.rfile.readline().split(b";")[0], 16)) != 0:
                out += self.rfile.read(n)
                self.rfile.readline()
            self.rfile.readline()
            return out
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self, method: str) -> None:
        body = self._body() if method in ("POST", "PUT") else b""
        url = urlsplit(self.path)
        st = self.state
        try:
            if method == "PUT" and url.path.startswith("/upload/"):
                status, payload = self.r_upload(unquote(url.path), parse_qs(url.query), body)
            elif url.path.startswith("/sdk/otel/"):  # the client's own telemetry: answered, not checked
                st.calls["otel"] += 1
                status, payload = 200, {}
            else:
                self._auth()
                with st.lock:
                    st.bodies.append(body)
                if url.path == "/graphql" and method == "POST":
                    status, payload = self.r_graphql(json.loads(body))
                elif m := re.fullmatch(r"/files/([^/]+)/([^/]+)/([^/]+)/file_stream", url.path):
                    st.calls["file_stream"] += 1
                    status, payload = self.r_file_stream(*map(unquote, m.groups()), json.loads(body))
                else:
                    st.unknown.append(f"{method} {url.path}")
                    status, payload = 404, {"error": f"no route {method} {url.path}"}
        except WandbError as e:
            status, payload = e.status, {"errors": [{"message": str(e)}], "error": str(e)}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _auth(self) -> None:
        got = self.headers.get("Authorization", "")
        want = "Basic " + base64.b64encode(f"api:{self.state.api_key}".encode()).decode()
        if got != want:
            raise WandbError(401, "user is not logged in" if not got else "invalid API key")

    # --- GraphQL ------------------------------------------------------------------------------------
    def r_graphql(self, req: dict) -> tuple[int, dict]:
        q = req.get("query", "")
        op = req.get("operationName") or (re.search(r"(?:query|mutation)\s+(\w+)", q) or [None, ""])[1]
        self.state.calls[f"graphql:{op}"] += 1
        fn = getattr(self, f"gql_{op}", None)
        if fn is None:
            if re.search(r"__type|__schema|ServerInfo|ServerFeatures|Probe", op + q):
                return 200, {"data": {}}  # capability probes: "nothing special here"
            self.state.unknown.append(op or q[:80])
            return 200, {"errors": [{"message": f"loopback W&B server: unknown operation {op!r}"}], "data": None}
        return 200, {"data": fn(req.get("variables") or {})}

    def gql_Viewer(self, v: dict) -> dict:
        e = self.state.entity
        return {
            "viewer": {
                "id": "VXNlcjox",
                "entity": e,
                "username": e,
                "email": f"{e}@example.com",
                "admin": False,
                "flags": "{}",
                "teams": {"edges": []},
                "defaultFramework": None,
                "photoUrl": None,
            }
        }

    def gql_OrganizationCoreWeaveOrganizationID(self, v: dict) -> dict:
        return {"entity": {"organization": None}}  # a personal entity: no organization

    def _bucket(self, run: Run) -> dict:
        return {
            "id": run.storage_id,
            "name": run.name,
            "displayName": run.display_name,
            "description": None,
            "config": json.dumps(run.config),
            "sweepName": None,
            "historyLineCount": len(run.streams.get(HISTORY, [])),
            "project": {
                "id": "UHJvamVjdDox",
                "name": run.project,
                "entity": {"id": "RW50aXR5OjE=", "name": run.entity},
            },
        }

    def gql_UpsertBucket(self, v: dict) -> dict:
        st = self.state
        project, name = v.get("project") or "uncategorized", v.get("name") or v.get("id")
        if not name:
            raise WandbError(400, "UpsertBucket without a run name")
        with st.lock:
            existed = st.run(project, name, v.get("entity")) is not None
            run = st.run(project, name, v.get("entity"), create=True)
            run.upserts += 1
            if v.get("config") is not None:
                run.config = _json(v["config"])
            for k, attr in (
                ("tags", "tags"),
                ("groupName", "group"),
                ("jobType", "job_type"),
                ("displayName", "display_name"),
            ):
                if v.get(k) is not None:
                    setattr(run, attr, v[k])
            return {"upsertBucket": {"bucket": self._bucket(run), "inserted": not existed}}

    def gql_RunResumeStatus(self, v: dict) -> dict:
        st = self.state
        with st.lock:
            run = st.run(v.get("project") or "uncategorized", v["name"], v.get("entity"))
            if run is None:
                bucket = None
            else:
                s = run.streams
                bucket = {
                    "id": run.storage_id,
                    "name": run.name,
                    "displayName": run.display_name,
                    "summaryMetrics": json.dumps(run.summary),
                    "logLineCount": len(s.get(OUTPUT, [])),
                    "historyLineCount": len(s.get(HISTORY, [])),
                    "eventsLineCount": len(s.get(EVENTS, [])),
                    "historyTail": json.dumps(s.get(HISTORY, [])[-10:]),
                    "eventsTail": json.dumps(s.get(EVENTS, [])[-10:]),
                    "config": json.dumps(run.config),
                    "tags": run.tags,
                    "notes": None,
                    "wandbConfig": json.dumps(
                        {"t": run.config.get("_wandb", {}).get("value", {}).get("t", {})}
                        if isinstance(run.config.get("_wandb"), dict)
                        else {"t": {"1": [1]}}
                    ),
                }
        return {
            "model": {
                "id": "UHJvamVjdDox",
                "name": v.get("project"),
                "entity": {"id": "RW50aXR5OjE=", "name": v.get("entity") or st.entity},
                "bucket": bucket,
            }
        }

    def gql_CreateRunFiles(self, v: dict) -> dict:
        st = self.state
        base = f"http://{self.headers['Host']}"
        run = st.run(v.get("project") or "uncategorized", v["run"], v.get("entity"))
        if run is None:
            raise WandbError(404, f"run {v['run']} not found")
        files = []
        for name in v.get("files", []):
            path = f"/upload/{run.entity}/{run.project}/{run.name}/{name}"
            files.append({"name": name, "uploadUrl": f"{base}{path}?sig={st.sign(path)}"})
        return {"createRunFiles": {"runID": run.storage_id, "uploadHeaders": [], "files": files}}

    # --- streaming and uploads ----------------------------------------------------------------------
    def r_file_stream(self, entity: str, project: str, name: str, req: dict) -> tuple[int, dict]:
        st = self.state
        with st.lock:
            run = st.run(project, name, entity)
            if run is None:
                raise WandbError(404, f"run {entity}/{project}/{name} was never upserted")
            for fname, chunk in (req.get("files") or {}).items():
                lines, offset = run.streams.setdefault(fname, []), int(chunk.get("offset", 0))
                content = list(chunk.get("content") or [])
                if fname == SUMMARY:  # the latest summary replaces the previous one
                    run.streams[fname] = content[-1:] or lines
                    continue
                if offset > len(lines) or (fname == HISTORY and offset < len(lines)):
                    raise WandbError(400, f"{fname}: offset {offset} does not continue the {len(lines)} lines stored")
                lines[offset : offset + len(content)] = content
            if req.get("complete"):
                run.completes += 1
                run.exitcode = req.get("exitcode")
        return 200, {"exitcode": None, "limits": {}}

    def r_upload(self, path: str, q: dict, body: bytes) -> tuple[int, dict]:
        st = self.state
        st.calls["upload"] += 1
        if not hmac.compare_digest(q.get("sig", [""])[0], st.sign(path)):
            raise WandbError(403, "bad signature")
        if self.headers.get("Authorization"):
            raise WandbError(400, "signed URL: no Authorization header")
        m = re.fullmatch(r"/upload/([^/]+)/([^/]+)/([^/]+)/(.+)", path)
        run = st.run(m.group(2), m.group(3), m.group(1))
        with st.lock:
            run.files[m.group(4)] = body
        return 200, {"md5": hashlib.md5(body).hexdigest()}


class WandbServer(LoopbackServer):
    """A `ThreadingHTTPServer` on 127.0.0.1 in a daemon thread; `url` is the client's WANDB_BASE_URL."""

    def __init__(self, api_key: str, *, port: int = 0, entity: str = ENTITY):
        self.state = WandbState(api_key, entity)
        super().__init__(type("BoundHandler", (Handler,), {"state": self.state}), port=port)

    def __enter__(self) -> WandbServer:
        return self.start()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8766)
    ap.add_argument("--key", required=True, help="the API key every call must carry (40+ characters)")
    args = ap.parse_args()
    server = WandbServer(args.key, port=args.port)
    print(f"W&B server on {server.url}", flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
