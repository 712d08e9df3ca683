"""The examples of docs/testing.md, run as part of jobq's own suite (with its pytest plugin)."""

from __future__ import annotations

import pytest
import signup

import jobq
from jobq.testing import (
    InlineRunner,
    InProcessWorker,
    MovableClock,
    assert_enqueued,
    refute_enqueued,
    wait_for_result,
)


@pytest.fixture(autouse=True)
def clean_outbox() -> None:
    signup.SENT.clear()
    signup.CONFIRMED.clear()


# -- example: inspect --
def test_sign_up_enqueues_a_welcome_and_a_reminder(jobq_db: jobq.Database) -> None:
    signup.sign_up(jobq_db, "ann@example.com")
    queue = jobq_db.queue()
    assert_enqueued(queue, signup.send_welcome, args=("ann@example.com",), due=True)
    assert_enqueued(queue, signup.send_reminder, due=False)
    refute_enqueued(queue, signup.send_reminder, due=True)
    assert signup.SENT == []  # nothing ran


# -- end --


# -- example: inline --
def test_inline_mode_runs_jobs_at_put(jobq_db: jobq.Database, jobq_inline: InlineRunner) -> None:
    welcome = signup.sign_up(jobq_db, "bob@example.com")
    assert welcome.status == "completed" and welcome.result == "sent"
    assert signup.SENT == ["welcome bob@example.com"]
    # the callback ran too, and the reminder waits for its time
    assert_enqueued(jobq_db.queue(), signup.send_reminder, count=1)


# -- end --


# -- example: clock --
def test_the_reminder_comes_a_day_later(
    jobq_clock: MovableClock, jobq_db: jobq.Database, jobq_worker: InProcessWorker
) -> None:
    signup.sign_up(jobq_db, "cy@example.com")
    jobq_worker.drain()
    assert signup.SENT == ["welcome cy@example.com"]

    jobq_clock.advance(hours=23)
    jobq_worker.drain()
    assert signup.SENT == ["welcome cy@example.com"]

    jobq_clock.advance(hours=1)
    (reminder,) = jobq_worker.drain()
    assert reminder.result == "sent"
    assert signup.SENT == ["welcome cy@example.com", "reminder cy@example.com"]


# -- end --


# -- example: deadline --
def test_a_reminder_not_started_in_time_fails(
    jobq_clock: MovableClock, jobq_db: jobq.Database, jobq_worker: InProcessWorker
) -> None:
    signup.sign_up(jobq_db, "di@example.com")
    jobq_worker.drain()
    jobq_clock.advance(days=1, hours=2)  # past begin_after + begin_by
    (reminder,) = jobq_worker.drain()
    assert reminder.failed and reminder.failure.type_name.endswith("TimeoutError")
    assert signup.SENT == ["welcome di@example.com"]


# -- end --


# -- example: wait --
def test_wait_for_a_result(jobq_db: jobq.Database, jobq_worker: InProcessWorker) -> None:
    welcome = signup.sign_up(jobq_db, "ed@example.com")
    assert wait_for_result(welcome, timeout=10) == "sent"
    (callback,) = [j for j in jobq_worker.drain() if j.parent_id == welcome.id]
    assert callback.result == "outcome: sent"


# -- end --


# -- example: both engines --
@pytest.mark.parametrize("jobq_engine", ["sqlite", "postgres"])
def test_on_both_engines(jobq_queue: jobq.Queue, jobq_inline: InlineRunner) -> None:
    job = jobq_queue.put(jobq.Job(signup.send_welcome, "fay@example.com"))
    assert job.result == "sent"


# -- end --
