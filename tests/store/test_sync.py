"""BackgroundSync: non-blocking requests, throttling, retries with backoff, final flush, conflicts."""

from __future__ import annotations

import logging
import time

import pytest
from conftest import KEY, make_run, tree_bytes

from molremote.store import LocalStore
from molremote.store.sync import BackgroundSync


def test_requests_coalesce_within_interval_and_flush_pushes_the_rest(tmp_path):
    store = LocalStore(tmp_path / "store")
    run = make_run(tmp_path / "runs")
    with BackgroundSync(store, run, KEY, min_interval_s=60) as sync:
        sync.request()
        deadline = time.monotonic() + 10
        while sync.pushes < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sync.pushes == 1  # first request pushes at once
        for epoch in range(5):  # within the interval: no push, requests only pile up
            (run / "metrics.jsonl").open("ab").write(b'{"epoch": %d}\n' % epoch)
            sync.request()
        time.sleep(0.3)
        assert sync.pushes == 1 and sync.status()["pending"]
        assert tree_bytes(store.root / "runs" / KEY) != tree_bytes(run)
        assert sync.flush(timeout=10) is True  # the final push ignores the interval
        assert sync.pushes == 2 and sync.last_summary["uploaded"] == ["metrics.jsonl"]
    assert tree_bytes(store.root / "runs" / KEY) == tree_bytes(run)


def test_pushes_resume_after_the_interval(tmp_path):
    store = LocalStore(tmp_path / "store")
    run = make_run(tmp_path / "runs")
    with BackgroundSync(store, run, KEY, min_interval_s=0.3) as sync:
        sync.request()
        time.sleep(0.1)
        (run / "submission.csv").write_bytes(b"id,y\n1,0.9\n")
        sync.request()
        deadline = time.monotonic() + 10
        while sync.pushes < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sync.pushes == 2
    assert tree_bytes(store.root / "runs" / KEY) == tree_bytes(run)


def test_conflict_stops_sync_and_flush_reports_it(tmp_path, caplog):
    store = LocalStore(tmp_path / "store")
    store.push(make_run(tmp_path / "other", run_uid="uid-theirs"), KEY)
    run = make_run(tmp_path / "runs", run_uid="uid-mine", seed=1)
    with BackgroundSync(store, run, KEY, backoff_base_s=0.01) as sync, caplog.at_level(logging.ERROR):
        assert sync.flush(timeout=10) is False
        assert "uid-theirs" in sync.fatal and sync.pushes == 0 and sync.failures == 0
    assert "uid-mine" in caplog.text
    assert tree_bytes(run)["manifest.json"] != tree_bytes(store.root / "runs" / KEY)["manifest.json"]


def test_flush_times_out_while_store_stays_unreachable_and_local_copy_is_intact(tmp_path, caplog):
    blocker = tmp_path / "store"
    blocker.write_text("a file where the store folder should be")  # every push fails with an OSError
    run = make_run(tmp_path / "runs")
    before = tree_bytes(run)
    with (
        BackgroundSync(LocalStore(blocker), run, KEY, backoff_base_s=0.05, backoff_max_s=0.2) as sync,
        caplog.at_level(logging.WARNING),
    ):
        t = time.monotonic()
        assert sync.flush(timeout=1.0) is False
        assert 0.9 < time.monotonic() - t < 3
        assert sync.failures >= 3 and "Error" in sync.last_error  # retried, with bounded backoff
        blocker.unlink()  # the store comes back: the pending push goes through
        assert sync.flush(timeout=10) is True and sync.failures == 0
    assert "retrying in" in caplog.text and "did not complete" in caplog.text
    assert tree_bytes(run) == before == tree_bytes(blocker / "runs" / KEY)


@pytest.mark.integration
def test_hub_failures_are_retried_with_backoff_and_request_never_blocks(tmp_path, hub, hub_store, caplog):
    run = make_run(tmp_path / "runs")
    hub.state.fail_next("info", n=3, mode="500")  # three pushes in a row fail at their first call
    hub.state.fail_next("commit", n=1, mode="drop")  # and the next one's commit loses its connection once
    caplog.set_level(logging.WARNING, logger="molremote.store.sync")
    with BackgroundSync(hub_store, run, KEY, min_interval_s=60, backoff_base_s=0.05) as sync:
        t = time.monotonic()
        for _ in range(100):
            sync.request()
        assert time.monotonic() - t < 0.2
        time.sleep(0.6)  # 3 failures (0.05 + 0.1 + 0.2 s backoff), then a push stuck ~1 s in the client's retry
        assert sync.status()["failures"] == 3
        t = time.monotonic()
        sync.request()
        assert time.monotonic() - t < 0.2
        assert sync.flush(timeout=30) is True
        st = sync.status()
    assert st["failures"] == 0 and st["last_error"] is None and sync.pushes >= 1
    assert hub.state.calls["info"] >= 4
    assert all(f"failed ({i} in a row)" in caplog.text for i in (1, 2, 3))
    assert hub.state.snapshot("tester/proj-runs", f"runs/{KEY}") == tree_bytes(run)


def test_request_starts_the_thread_and_stop_is_final(tmp_path):
    store = LocalStore(tmp_path / "store")
    run = make_run(tmp_path / "runs")
    sync = BackgroundSync(store, run, KEY)  # not started: request() starts it
    sync.request()
    assert sync.flush(timeout=10) is True and store.exists(KEY)
    sync.stop()
    sync.request()  # ignored after stop, never raises
    assert sync.flush(timeout=1) is False
