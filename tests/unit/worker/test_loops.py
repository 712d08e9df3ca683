"""The dispatcher's loops without a database: `run_due` ticks due loops in order and ends the
round at a failure, `Backoff` tells expected store trouble from bugs, the timers, and the sweep
following the heartbeat's pings."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

import pytest

from jobq.errors import ConflictError, StoreUnavailable
from jobq.worker.heartbeat import Heartbeat
from jobq.worker.loops import Backoff, Every, Loop, run_due
from jobq.worker.sweep import Sweep

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class Recorded:
    """A loop that notes its ticks and failures in a shared list."""

    def __init__(
        self, name: str, log: list[str], *, due: bool = True, error: Exception | None = None
    ):
        self.name = name
        self._log = log
        self._due = due
        self._error = error

    def start(self) -> None:
        self._log.append(f"{self.name} start")

    def due(self, now: dt.datetime) -> bool:
        return self._due

    def tick(self, now: dt.datetime) -> None:
        self._log.append(f"{self.name} tick")
        if self._error is not None:
            raise self._error

    def failed(self, error: Exception) -> None:
        self._log.append(f"{self.name} failed: {error}")


def test_due_loops_tick_in_order_and_the_others_are_skipped() -> None:
    log: list[str] = []
    loops: list[Loop] = [
        Recorded("a", log),
        Recorded("b", log, due=False),
        Recorded("c", log),
    ]
    assert run_due(loops, T0) is True
    assert log == ["a tick", "c tick"]


def test_a_failed_tick_is_handled_by_its_loop_and_ends_the_round() -> None:
    log: list[str] = []
    loops: list[Loop] = [
        Recorded("heartbeat", log, error=StoreUnavailable("down")),
        Recorded("agents", log),
    ]
    assert run_due(loops, T0) is False
    assert log == ["heartbeat tick", "heartbeat failed: down"]


def _backoff() -> Backoff:
    stopping = threading.Event()
    stopping.set()  # a stopping dispatcher: the back-off wait returns at once
    return Backoff(stopping, lambda: 1.0)


@pytest.mark.parametrize("error", [StoreUnavailable("gone"), ConflictError("locked")])
def test_store_trouble_is_a_warning(error: Exception, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jobq.events"):
        _backoff().failed("heartbeat", error)
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage().startswith("heartbeat failed (")


def test_anything_else_is_critical_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise KeyError("bug")
    except KeyError as error:
        with caplog.at_level(logging.WARNING, logger="jobq.events"):
            _backoff().failed("sweep", error)
    [record] = caplog.records
    assert record.levelno == logging.CRITICAL and record.exc_info is not None
    assert "unexpected error in sweep" in record.getMessage()


def test_the_timer_is_due_at_once_then_after_its_interval() -> None:
    interval = [5.0]
    timer = Every(lambda: interval[0])
    assert timer.due(T0)
    timer.last = T0
    assert not timer.due(T0 + dt.timedelta(seconds=4.9))
    assert timer.due(T0 + dt.timedelta(seconds=5))
    interval[0] = 10.0  # the interval is read at each check: a change applies at once
    assert not timer.due(T0 + dt.timedelta(seconds=5))
    timer.reset()
    assert timer.due(T0)


class PingStore:
    """What the heartbeat asks of a store, answering from a script."""

    def __init__(self) -> None:
        self.reachable = True
        self.activated = True
        self.reactivated = 0

    def ping(self, uuid: str, now: dt.datetime) -> bool:
        if not self.reachable:
            raise StoreUnavailable("no route to host")
        return self.activated

    def reactivate_dispatcher(self, uuid: str, now: dt.datetime) -> None:
        self.reactivated += 1
        self.activated = True

    def get_dispatcher(self, uuid: str) -> Any:
        return None


def _heartbeat(store: PingStore, fired: list[str]) -> Heartbeat:
    return Heartbeat(
        store,  # type: ignore[arg-type]
        "u",
        ping_interval=5.0,
        death_interval=30.0,
        backoff=_backoff(),
        fire=fired.append,
    )


def test_the_sweep_follows_each_ping_that_went_through() -> None:
    store = PingStore()
    heartbeat = _heartbeat(store, [])
    sweep = Sweep(None, "u", after=heartbeat, held=set, backoff=_backoff())  # type: ignore[arg-type]
    heartbeat.start()
    sweep.start()
    assert heartbeat.due(T0) and not sweep.due(T0)  # nothing owed before the first ping
    store.reachable = False
    assert run_due([heartbeat, sweep], T0) is False
    assert heartbeat.due(T0) and not sweep.due(T0)  # a failed ping: retried, no sweep owed
    store.reachable = True
    heartbeat.tick(T0)
    assert sweep.due(T0) and not heartbeat.due(T0 + dt.timedelta(seconds=1))


def test_a_heartbeat_presumed_dead_reactivates_and_says_so() -> None:
    store = PingStore()
    fired: list[str] = []
    heartbeat = _heartbeat(store, fired)
    heartbeat.start()
    store.activated = False
    heartbeat.tick(T0)
    assert store.reactivated == 1 and fired == ["reactivated"]


def test_silence_longer_than_the_death_interval_makes_the_dispatcher_lost() -> None:
    store = PingStore()
    heartbeat = _heartbeat(store, [])
    heartbeat.start()
    heartbeat.check_silence()
    assert not heartbeat.lost
    heartbeat.death_interval = -1.0  # any silence is now too long
    heartbeat.check_silence()
    assert heartbeat.lost
    heartbeat.tick(T0)  # a ping that goes through
    assert not heartbeat.lost
