"""What every loopback test server shares: a `ThreadingHTTPServer` on 127.0.0.1 served from a daemon thread."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a client closing a kept-alive socket is normal
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackServer:
    """Serves `handler` on 127.0.0.1 (`port` 0: a free one). `url` is known at once; the serving thread starts
    with `start()` or `with`, and `stop()` shuts it down and closes the socket."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, port: int = 0, poll_s: float = 0.5):
        self.httpd = QuietServer(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(poll_s,), daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
