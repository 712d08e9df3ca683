"""`jobq.worker.timeouts.Timeouts.check`, with the monotonic readings given: a run's stop is
requested at its limit, it is revoked and taken away once its grace has passed too, a failed
take-away is tried again, and only a threaded run taken away counts as a runaway."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from jobq.worker.timeouts import Timeouts, Watched


class Runner:
    def __init__(self, fail: int = 0, ended: bool = False) -> None:
        self.revoked: list[Watched] = []
        self.taken: list[Watched] = []
        self.fail = fail
        self.ended = ended

    def revoke(self, run: Watched) -> None:
        self.revoked.append(run)

    def take_away(self, run: Watched) -> bool:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("database away")
        self.taken.append(run)
        return not self.ended


def _run(runner: Runner, *, is_async: bool = False, limit: float = 10.0) -> Watched:
    job: Any = SimpleNamespace(label="job 1 (f())")
    return Watched(job, limit, 2.0, runner.take_away, runner.revoke, is_async, started=100.0)


def test_the_stop_comes_at_the_limit_and_the_take_away_after_the_grace() -> None:
    runaways: list[int] = []
    timeouts = Timeouts(on_runaway=lambda: runaways.append(1))
    runner = Runner()
    run = _run(runner)
    timeouts._runs.add(run)  # as `watch` does, without its thread
    assert timeouts.next_at() == 110.0
    assert timeouts.check(109.9) == 0
    assert not run.guard.stop
    assert timeouts.check(110.0) == 0
    assert run.guard.stop and runner.taken == []
    assert timeouts.next_at() == 112.0  # now its grace's end
    assert timeouts.check(112.0) == 1
    assert runner.revoked == [run] and runner.taken == [run] and run.taken
    assert runaways == [1]
    assert timeouts.check(200.0) == 0  # taken once
    assert timeouts.next_at() is None


def test_a_failed_take_away_is_tried_again() -> None:
    timeouts = Timeouts()
    runner = Runner(fail=1)
    run = _run(runner)
    timeouts._runs.add(run)
    assert timeouts.check(112.0) == 0
    assert not run.taken and runner.taken == []
    assert timeouts.next_at() == 113.0  # not at once again: in RETRY_AFTER
    assert timeouts.check(112.5) == 0
    assert timeouts.check(113.0) == 1
    assert run.taken


def test_only_a_threaded_run_taken_away_is_a_runaway() -> None:
    runaways: list[int] = []
    timeouts = Timeouts(on_runaway=lambda: runaways.append(1))
    async_runner, ended_runner = Runner(), Runner(ended=True)
    timeouts._runs.update({_run(async_runner, is_async=True), _run(ended_runner)})
    assert timeouts.check(112.0) == 1  # the async one; the other had ended meanwhile
    assert runaways == []


def test_a_forgotten_run_is_not_checked() -> None:
    timeouts = Timeouts()
    runner = Runner()
    run = _run(runner)
    timeouts._runs.add(run)
    timeouts.forget(run)
    assert timeouts.check(500.0) == 0 and runner.revoked == []
    assert len(timeouts) == 0


def test_a_run_whose_limit_ends_before_the_thread_looks_again_wakes_it() -> None:
    """The thread looks at least every second by itself, so watching a run wakes it only
    when the run's limit ends before that (most runs cost no wake-up); such a run's stop is
    requested at its limit, not at the next look."""
    timeouts = Timeouts()
    runner = Runner()
    try:
        long_run = Watched(
            SimpleNamespace(label="long"), 60.0, 2.0, runner.take_away, runner.revoke
        )
        timeouts.watch(long_run)
        deadline = time.monotonic() + 5
        while timeouts._looks_at == 0.0 and time.monotonic() < deadline:
            time.sleep(0.001)  # the thread now waits, to look again a second later
        short = Watched(SimpleNamespace(label="short"), 0.2, 2.0, runner.take_away, runner.revoke)
        timeouts.watch(short)
        while not short.guard.stop and time.monotonic() < deadline:
            time.sleep(0.005)
        assert short.guard.stop and not long_run.guard.stop
        assert time.monotonic() - short.started < 0.9  # before the look a second on
    finally:
        timeouts.close()
