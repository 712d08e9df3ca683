"""Testing jobq applications: wait helpers, a movable clock, test workers, inline mode,
assertions on enqueued jobs, and a pytest plugin (`jobq.testing.pytest_plugin`, loaded
automatically when jobq is installed). See docs/testing.md.

    from jobq.testing import MovableClock, start_worker, wait_for_result

    clock = MovableClock()
    db = jobq.connect("sqlite:///test.db", clock=clock)
    with start_worker(db) as worker:
        job = db.queue().put(jobq.Job(report, 7), begin_after=clock.now() + timedelta(hours=1))
        clock.advance(hours=1)              # due now: the worker wakes and runs it
        assert wait_for_result(job) == "done"

Nothing here patches time or jobq globally: everything takes the Database (or a queue, job or
dispatcher of it) explicitly.
"""

from __future__ import annotations

from jobq.testing._clock import MovableClock
from jobq.testing._enqueued import all_enqueued, assert_enqueued, due_pending, refute_enqueued
from jobq.testing._inline import InlineRunner, inline, run_due
from jobq.testing._logs import print_logs, stop_printing_logs
from jobq.testing._wait import (
    wait_for_annotation,
    wait_for_deactivation,
    wait_for_result,
    wait_for_start,
    wait_for_status,
)
from jobq.testing._worker import InProcessWorker, TearDownError, start_worker

for _cls in (InProcessWorker, InlineRunner, MovableClock, TearDownError):
    _cls.__module__ = __name__  # shown as jobq.testing.TearDownError, where users import it

__all__ = [
    "InProcessWorker",
    "InlineRunner",
    "MovableClock",
    "TearDownError",
    "all_enqueued",
    "assert_enqueued",
    "due_pending",
    "inline",
    "print_logs",
    "refute_enqueued",
    "run_due",
    "start_worker",
    "stop_printing_logs",
    "wait_for_annotation",
    "wait_for_deactivation",
    "wait_for_result",
    "wait_for_start",
    "wait_for_status",
]
