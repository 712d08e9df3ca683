"""`InProcessWorker`: a dispatcher for tests, with `drain()`; and `TearDownError`.

    with jobq.testing.start_worker(db) as worker:     # polls every 0.05 s
        job = db.queue().put(jobq.Job(send_mail, 7))
        worker.drain(timeout=10)                       # everything due has run
        assert job.refresh().result == "sent"

`drain()` returns once the worker's queues are idle: no due pending job, and no job this
worker claimed still assigned, active (or waiting on another job) or running its callbacks.
On exit the worker stops; a job still running then is a `TearDownError` naming it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from jobq.model.job import Job, Status
from jobq.testing._enqueued import due_pending
from jobq.testing._wait import describe_job
from jobq.worker.agent import AgentSpec

if TYPE_CHECKING:
    from jobq.database import Database
    from jobq.store.base import JobRecord
    from jobq.worker.dispatcher import Dispatcher

__all__ = ["InProcessWorker", "TearDownError", "start_worker"]

_BUSY = {Status.ASSIGNED, Status.ACTIVE, Status.CALLBACKS}
_POLL = 0.02


class TearDownError(AssertionError):
    """A test worker stopped while some of its jobs were still running; `.jobs` lists them."""

    def __init__(self, message: str, jobs: Sequence[Job] = ()) -> None:
        super().__init__(message)
        self.jobs = list(jobs)


class InProcessWorker:
    """A started dispatcher of one Database, for tests: `drain()`, `stop()`, context manager.

    Build it with `start_worker(db, ...)`. If the Database's clock has `on_change` (a
    `MovableClock`), moving the clock wakes the dispatcher at once.
    """

    __test__ = False  # not a pytest test class, whatever a test module imports it as

    def __init__(self, dispatcher: Dispatcher, *, grace: float = 5.0) -> None:
        self.dispatcher = dispatcher
        self.db: Database = dispatcher.owner
        self.grace = grace
        self._lock = threading.Lock()
        self._claimed: dict[int, JobRecord] = {}  # every job this worker claimed, by id
        self._claims = 0
        self._reported = 0  # how many of _claimed earlier drains returned
        self._busy: set[int] = set()  # claimed ids not yet seen finished
        self._unsubscribe: Callable[[], None] | None = None
        self._stopped = False
        dispatcher.on_claim = self._on_claim

    def __repr__(self) -> str:
        return f"<jobq.testing.InProcessWorker {self.dispatcher.uuid} {self.queues}>"

    @property
    def queues(self) -> list[str]:
        return list(self.dispatcher.queues)

    def _on_claim(self, record: JobRecord) -> None:
        with self._lock:
            self._claimed[record.id] = record
            self._busy.add(record.id)
            self._claims += 1

    # -- life cycle --------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> InProcessWorker:
        on_change = getattr(self.db.clock, "on_change", None)
        if callable(on_change):
            self._unsubscribe = on_change(self.dispatcher.wake)
        self.dispatcher.start(timeout=timeout)
        return self

    def __enter__(self) -> InProcessWorker:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        # A test that already failed keeps its own error; the stop still happens.
        self.stop(check=exc_type is None)

    def stop(self, *, grace: float | None = None, check: bool = True) -> None:
        """Stop the dispatcher. Jobs it claimed get `grace` seconds (default: the worker's)
        to finish; if any is still running then, it is handed on as the dispatcher does on a
        real stop, and (with `check`) a `TearDownError` names each one."""
        if self._stopped:
            return
        self._stopped = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        grace = self.grace if grace is None else grace
        deadline = time.monotonic() + grace
        while self._running_jobs() and time.monotonic() < deadline:
            time.sleep(_POLL)
        still = self._running_jobs()
        self.dispatcher.stop(grace=0.0 if still else grace)
        self.dispatcher.on_claim = None
        if still and check:
            lines = "\n".join(f"  {describe_job(job)} still {self._state(job)}" for job in still)
            raise TearDownError(
                f"test worker {self.dispatcher.uuid} stopped with {len(still)} job(s) still "
                f"running after {grace:g} s:\n{lines}",
                still,
            )

    @staticmethod
    def _state(job: Job) -> str:
        if job.waiting_on is not None:
            return f"{job.status} (waiting on job {job.waiting_on})"
        return str(job.status)

    def _running_jobs(self) -> list[Job]:
        """Jobs this worker claimed whose current attempt it has not finished."""
        with self._lock:
            records = [self._claimed[i] for i in sorted(self._busy)]
        running = []
        for record in records:
            record_now = self.db.store.get(record.id)
            if (
                record_now is not None
                and record_now.status in ("assigned", "active")
                and record_now.dispatcher_uuid == self.dispatcher.uuid
                and record_now.attempt == record.attempt
            ):
                running.append(self.db.rows.job(record_now))
        return running

    # -- draining ----------------------------------------------------------------------------
    def drain(self, timeout: float = 10.0) -> list[Job]:
        """Let the worker run everything due in its queues (follow-up jobs and callbacks
        included), and return once they are idle; returns the jobs it claimed since the
        previous drain (or its start), refreshed, in claim order. After `timeout` real
        seconds, an AssertionError says what is still pending or running."""
        if self._stopped:
            raise RuntimeError(f"{self!r} is stopped")
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                claims_before = self._claims
            polls_before = self.dispatcher.polls
            due = self._due_pending()
            busy = self._busy_jobs()
            if not due and not busy:
                # Idle now, unless a claim was under way: let a whole poll cycle start and end
                # after this reading, and check that nothing was claimed meanwhile.
                if self._wait_polls(polls_before + 2, deadline):
                    with self._lock:
                        if self._claims == claims_before:
                            break
            else:
                self.dispatcher.wake()
                time.sleep(_POLL)
            if time.monotonic() >= deadline:
                raise AssertionError(
                    self._drain_report(timeout, self._due_pending(), self._busy_jobs())
                )
        with self._lock:
            ids = list(self._claimed)[self._reported :]
            self._reported += len(ids)
        return [self.db.get_job(i) for i in ids]

    def _wait_polls(self, target: int, deadline: float) -> bool:
        while self.dispatcher.polls < target:
            if time.monotonic() >= deadline or not self.dispatcher.activated:
                return self.dispatcher.polls >= target
            self.dispatcher.wake()
            time.sleep(0.005)
        return True

    def _due_pending(self) -> list[Job]:
        return due_pending(self.db, self.dispatcher.queues)

    def _busy_jobs(self) -> list[Job]:
        """Claimed jobs not finished: assigned, active, waiting on a job, or in callbacks."""
        with self._lock:
            ids = sorted(self._busy)
        busy = []
        for job_id in ids:
            record = self.db.store.get(job_id)
            if record is not None and Status(record.status) in _BUSY:
                busy.append(self.db.rows.job(record))
            else:
                with self._lock:
                    self._busy.discard(job_id)
        return busy

    def _drain_report(self, timeout: float, due: list[Job], busy: list[Job]) -> str:
        lines = [f"test worker's queues {self.queues} never became idle within {timeout:g} s:"]
        lines += [f"  {describe_job(j)} still {self._state(j)}" for j in busy]
        lines += [
            f"  {describe_job(j)} due but not claimed (pending; no agent takes it?)" for j in due
        ]
        return "\n".join(lines)


def start_worker(
    db: Database,
    *,
    queues: Iterable[str] = ("",),
    agents: Sequence[AgentSpec] | None = None,
    poll_interval: float = 0.05,
    grace: float = 5.0,
    uuid: str | None = None,
    **options: Any,
) -> InProcessWorker:
    """Start a dispatcher of `db` in this process, polling every `poll_interval` s (real
    time), for `queues` with `agents` (default one agent "main" of size 3); use the result
    as a context manager, or call its `stop()`."""
    from jobq.worker.dispatcher import Dispatcher

    dispatcher = Dispatcher(
        db.rows,
        owner=db,
        queues=list(queues),
        agents=agents,
        uuid=uuid,
        poll_interval=poll_interval,
        grace=grace,
        **options,
    )
    return InProcessWorker(dispatcher, grace=grace).start()
