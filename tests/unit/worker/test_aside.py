"""`Aside`: the few threads where a failed group commit goes to its retry policy."""

from __future__ import annotations

import logging
import threading

import pytest
from worker_helpers import wait_until

from jobq.worker.aside import Aside


def test_calls_run_off_the_callers_thread_on_at_most_its_threads() -> None:
    aside = Aside("test-aside", threads=2)
    release = threading.Event()
    seen: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        with lock:
            seen.append(threading.current_thread().name)
        release.wait(10)

    for n in range(5):
        aside.submit(work, n)  # returns at once, though each call blocks
    wait_until(lambda: len(seen) == 2, what="two calls running")
    assert threading.current_thread().name not in seen
    release.set()
    wait_until(lambda: len(seen) == 5, what="every call")
    assert set(seen) <= {"test-aside-1", "test-aside-2"}
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("test-aside-"))


def test_a_failing_call_is_logged_and_the_next_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    aside = Aside("test-aside-failing", threads=1)
    done = threading.Event()

    def fail(_: object) -> None:
        raise RuntimeError("policy broke")

    with caplog.at_level(logging.CRITICAL, logger="jobq.events"):
        aside.submit(fail, None)
        aside.submit(lambda _: done.set(), None)
        assert done.wait(10)
    assert any("policy broke" in r.getMessage() for r in caplog.records)
