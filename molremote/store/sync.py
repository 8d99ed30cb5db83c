"""Push a run folder to its store from a background thread while training goes on.

    sync = BackgroundSync(store, run_dir, key).start()
    ...                      # after each checkpoint / epoch:
    sync.request()           # returns at once; the push happens in the thread, throttled
    ...
    ok = sync.flush(timeout=600)   # at the end, or on SIGTERM / deadline: final push, wait for it
    sync.stop()

The local folder is never touched: a failed push loses nothing, the next one carries every change since
the last success (pushes compare hashes with what the store holds).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

from .base import Store, StoreConflictError

log = logging.getLogger(__name__)

# Every push may carry checkpoints (one Hub commit each). The Hub allows ~128 commits per hour per repo and
# all runs of a project share one repo: 300 s gives 12 commits/hour per run, room for ~10 runs at once.
DEFAULT_MIN_INTERVAL_S = 300.0
# Failed pushes are retried after 10 s, 20 s, 40 s ... capped at 5 min: a flaky network recovers fast, an
# outage does not hammer the Hub (or eat its rate limit) while it lasts.
DEFAULT_BACKOFF_BASE_S = 10.0
DEFAULT_BACKOFF_MAX_S = 300.0


class BackgroundSync:
    def __init__(
        self,
        store: Store,
        run_dir: Path,
        key: str,
        *,
        min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
        backoff_base_s: float = DEFAULT_BACKOFF_BASE_S,
        backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
        force: bool = False,
    ):
        self.store, self.run_dir, self.key, self.force = store, Path(run_dir), key, force
        self.min_interval_s, self.backoff_base_s, self.backoff_max_s = min_interval_s, backoff_base_s, backoff_max_s
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name=f"molremote-sync-{key}", daemon=True)
        self._pending = False
        self._stopping = False
        self._flush_gen = self._done_gen = 0  # flush() asks for generation n; a push started after it serves it
        self._next_ok = 0.0  # monotonic time before which a throttled push may not start
        self._retry_at = 0.0
        self.failures = 0  # consecutive failures
        self.pushes = 0  # successful pushes
        self.last_error: str | None = None
        self.last_summary: dict[str, Any] | None = None
        self.fatal: str | None = None  # a conflict: retrying cannot help, pushes stop

    def start(self) -> BackgroundSync:
        """Start the thread (idempotent; request() and flush() start it if needed)."""
        with self._cond:
            if not self._thread.is_alive() and not self._stopping:
                self._thread.start()
        return self

    def request(self) -> None:
        """Ask for a push; returns at once. Pushes coalesce: several requests within the interval make one."""
        with self._cond:
            if self._stopping:
                return
            if not self._thread.is_alive():
                self._thread.start()
            self._pending = True
            self._cond.notify_all()

    def flush(self, timeout: float | None = 600.0) -> bool:
        """Push now (ignoring the interval, retrying failures with backoff) and wait for it. True if a push
        that started after this call succeeded within `timeout`; False on timeout or conflict."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._stopping:
                log.error("sync of %s: flush() after stop(); nothing pushed", self.key)
                return False
            if not self._thread.is_alive():
                self._thread.start()
            self._flush_gen += 1
            gen = self._flush_gen
            self._retry_at = min(self._retry_at, time.monotonic())  # a flush does not wait out old backoff
            self._cond.notify_all()
            while self._done_gen < gen and self.fatal is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    log.error(
                        "sync of %s to %s: final push did not complete in %.0f s (last error: %s); "
                        "the run is intact locally in %s",
                        self.key,
                        self.store.url,
                        timeout,
                        self.last_error,
                        self.run_dir,
                    )
                    return False
                self._cond.wait(left)
            return self._done_gen >= gen and self.fatal is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (without a final push: call flush() first). A push in flight is not interrupted;
        the thread is a daemon, so it never keeps the process alive."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        with self._cond:
            return {
                "key": self.key,
                "store": self.store.url,
                "pushes": self.pushes,
                "failures": self.failures,
                "pending": self._pending,
                "last_error": self.last_error,
                "fatal": self.fatal,
            }

    def __enter__(self) -> BackgroundSync:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the thread ----------------------------------------------------------------------------------
    def _due(self, now: float) -> float:
        if self.fatal is not None:
            return math.inf
        if self._flush_gen > self._done_gen:
            return self._retry_at if self.failures else now
        if self._pending:
            return max(self._next_ok, self._retry_at)
        return math.inf

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    due = self._due(now)
                    if self._stopping:
                        return
                    if due <= now:
                        break
                    self._cond.wait(None if due == math.inf else due - now)
                gen, self._pending = self._flush_gen, False
            try:
                summary = self.store.push(self.run_dir, self.key, force=self.force)
            except StoreConflictError as e:
                with self._cond:
                    self.fatal = self.last_error = str(e)
                    self._cond.notify_all()
                log.error("sync of %s stopped: %s", self.key, e)
            except Exception as e:  # any failure: keep the request, retry later; the local copy is intact
                with self._cond:
                    self.failures += 1
                    delay = min(self.backoff_base_s * 2 ** (self.failures - 1), self.backoff_max_s)
                    self._retry_at = time.monotonic() + delay
                    self._pending = True
                    self.last_error = f"{type(e).__name__}: {e}"
                    self._cond.notify_all()
                log.warning(
                    "sync of %s to %s failed (%d in a row), retrying in %.0f s: %s",
                    self.key,
                    self.store.url,
                    self.failures,
                    delay,
                    e,
                )
            else:
                with self._cond:
                    self.failures, self._retry_at = 0, 0.0
                    self._next_ok = time.monotonic() + self.min_interval_s
                    self._done_gen = max(self._done_gen, gen)
                    self.pushes += 1
                    self.last_error, self.last_summary = None, summary
                    self._cond.notify_all()
                log.info(
                    "synced %s to %s: %d uploaded, %d deleted",
                    self.key,
                    self.store.url,
                    len(summary["uploaded"]),
                    len(summary["deleted"]),
                )
