"""`molremote report --serve`: the report on localhost, rebuilt every few seconds while jobs run.

Standard library only (http.server): one page at `/`, rebuilt by a background thread into the output file
(atomically, so a request never sees half of it); the page reloads itself on the same period, keeping the
experiment page it shows. Bound to 127.0.0.1 by default: the report shows paths and hosts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class ReportServer:
    def __init__(
        self,
        out: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        every: float = 30.0,
        build_kwargs: dict[str, Any] | None = None,
        log: Callable[[str], None] = print,
    ):
        from .html import build

        self.out, self.every, self.log = Path(out), every, log
        self._build = lambda: build(self.out, refresh=every, **(build_kwargs or {}))
        self.last = self._build()
        self.builds = 1
        self._stop = threading.Event()
        page = self.out

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path.split("?")[0] not in ("/", "/index.html", "/" + page.name):
                    self.send_error(HTTPStatus.NOT_FOUND, "only the report is served here")
                    return
                body = page.read_bytes()
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per rebuild instead
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}/"
        self._threads = [
            threading.Thread(target=self.httpd.serve_forever, daemon=True),
            threading.Thread(target=self._rebuild_loop, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _rebuild_loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.last = self._build()
                self.builds += 1
            except Exception as e:  # keep serving the previous report; say why this one failed
                self.log(f"rebuild failed: {type(e).__name__}: {e}")

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for t in self._threads:
            t.join(timeout=10)
