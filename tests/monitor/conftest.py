"""Fixtures for the monitor tests: a database on a fake clock, and a store-level driver that
moves jobs through their statuses at chosen times (no worker threads, no sleeps)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import jobq
from jobq.model.failure import failure_dict
from jobq.monitor import Monitor
from jobq.store.base import JobRecord, Outcome
from jobq.testing import MovableClock

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
UUID = "11111111-1111-4111-8111-111111111111"


class Driver:
    """Moves jobs through claim / start / result with the store, at the fake clock's time."""

    def __init__(self, db: jobq.Database, clock: MovableClock) -> None:
        self.db = db
        self.clock = clock

    def dispatcher(
        self, uuid: str = UUID, agents: tuple[tuple[str, str, int, str | None], ...] = ()
    ) -> str:
        store = self.db.store
        store.activate_dispatcher(uuid, "testhost", 4242, 5.0, 30.0, self.clock.now())
        for queue, name, size, filter_ in agents or (("", "main", 3, None),):
            store.set_agent(uuid, queue, name, size, filter_)
        return uuid

    def start(self, job: jobq.Job, uuid: str = UUID) -> JobRecord:
        record = self.db.store.get(job.id)  # type: ignore[arg-type]
        assert record is not None
        assert self.db.store.start(record.id, record.attempt, uuid, self.clock.now())
        return record

    def finish(self, job: jobq.Job, value: Any = None, error: Exception | None = None) -> None:
        record = self.db.store.get(job.id)  # type: ignore[arg-type]
        assert record is not None
        if error is None:
            outcome = Outcome(self.db.codec.dumps(value), repr(value))
        else:
            try:
                raise error
            except Exception as raised:
                failure = jobq.Failure.from_exception(raised)
            outcome = Outcome(None, str(failure), failed=True, failure=failure_dict(failure))
        self.db.store.store_result(
            record.id, record.attempt, record.dispatcher_uuid or UUID, outcome, self.clock.now()
        )

    def run(
        self,
        job: jobq.Job,
        wait: float,
        active: float,
        value: Any = None,
        error: Exception | None = None,
    ) -> None:
        """Claim one job alone, start it after `wait` s, finish it after `active` s."""
        self.clock.advance(wait)
        self.claim_only(job, start=True)  # claimed for a free thread: started in the claim
        self.clock.advance(active)
        self.finish(job, value, error)

    def claim_only(
        self, job: jobq.Job, uuid: str = UUID, agent: str = "main", start: bool = False
    ) -> None:
        """Claim exactly `job` (other pending jobs stay pending), started with `start`."""
        store = self.db.store
        claimed = store.claim(
            job.queue_name or "",
            uuid,
            agent,
            1,
            self.clock.now(),
            accept=lambda r: r.id == job.id,
            start=start,
        )
        assert [r.id for r in claimed] == [job.id]


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
def driver(clock_db: jobq.Database, clock: MovableClock) -> Driver:
    return Driver(clock_db, clock)


@pytest.fixture
def monitor(clock_db: jobq.Database) -> Monitor:
    return Monitor(clock_db, this_uuid=UUID)
