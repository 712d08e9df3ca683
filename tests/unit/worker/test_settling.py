"""`Settling`, what a runner returns for a job whose outcome still commits, and `when_done`,
how the layers around a runner wait for a job's end."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable

import pytest

from jobq.worker.settling import Settling, when_done


def test_callbacks_run_once_when_settled_whether_added_before_or_after() -> None:
    settling = Settling()
    calls: list[str] = []
    settling.add_done_callback(lambda: calls.append("before"))
    assert calls == []
    settling.settled()
    assert calls == ["before"]
    settling.add_done_callback(lambda: calls.append("after"))  # runs now, in this thread
    assert calls == ["before", "after"]


def test_a_failing_callback_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settling = Settling()
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("bookkeeping bug")

    settling.add_done_callback(lambda: calls.append("stats"))
    settling.add_done_callback(broken)
    settling.add_done_callback(lambda: calls.append("pool"))
    with caplog.at_level(logging.CRITICAL, logger="jobq.events"):
        settling.settled()
    assert calls == ["stats", "pool"]
    assert "bookkeeping bug" in caplog.text


def test_callbacks_added_while_another_thread_settles_each_run_exactly_once() -> None:
    for _ in range(200):
        settling = Settling()
        calls: list[int] = []
        adders = [
            threading.Thread(target=settling.add_done_callback, args=(calls_append(calls, i),))
            for i in range(4)
        ]
        for thread in adders[:2]:
            thread.start()
        settling.settled()
        for thread in adders[2:]:
            thread.start()
        for thread in adders:
            thread.join()
        assert sorted(calls) == [0, 1, 2, 3]


def calls_append(calls: list[int], value: int) -> Callable[[], None]:
    return lambda: calls.append(value)


def test_when_done_waits_for_settling_and_futures_and_not_for_none() -> None:
    calls: list[str] = []
    when_done(None, lambda: calls.append("none"))
    assert calls == ["none"]

    settling = Settling()
    when_done(settling, lambda: calls.append("settling"))
    future: concurrent.futures.Future[None] = concurrent.futures.Future()
    when_done(future, lambda: calls.append("future"))
    assert calls == ["none"]
    settling.settled()
    future.set_result(None)
    assert calls == ["none", "settling", "future"]
