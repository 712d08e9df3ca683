"""Inline mode: every put runs its queue's due jobs at once, in the caller's thread.

    with jobq.testing.inline(db):
        job = db.queue().put(jobq.Job(add, 1, 2))
        assert job.status == "completed" and job.result == 3

It is not a fake: each due job is claimed, started, run and stored by jobq's own runner (the
same fencing, retry policies, failures and callbacks as in a worker), under the inline
runner's own dispatcher UUID. Follow-up jobs and callbacks run before `put` returns; the
jobs `put` returned are refreshed. A job scheduled for later runs when it becomes due: on the
next put, `run_due()`, or, with a `MovableClock`, as soon as the clock is moved past its time.

Not run inline: a put that joins an application transaction (`conn=`; call `run_due()` after
the commit), and jobs of queues that inline mode never saw a put for (pass `queues=`). Do not
run a worker on the same queues meanwhile, and do not `wait()` inside a job for a job of the
same queue: the inner job can only run after the outer one returns (return the job instead).
"""

from __future__ import annotations

import threading
import uuid as uuid_module
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from jobq.model.job import Job
from jobq.testing._enqueued import due_pending
from jobq.testing._wait import describe_job

if TYPE_CHECKING:
    from jobq.database import Database

__all__ = ["InlineRunner", "inline", "run_due"]

INLINE_AGENT = "inline"


class InlineRunner:
    """Runs due jobs of some queues synchronously in the calling thread (see `inline`)."""

    __test__ = False

    def __init__(
        self,
        db: Database,
        *,
        queues: Iterable[str] = ("",),
        max_jobs: int = 1000,
        uuid: str | None = None,
    ) -> None:
        from jobq.worker.runner import Runner

        self.db = db
        self.queues: list[str] = list(dict.fromkeys(queues))
        self.max_jobs = max_jobs
        self.uuid = str(uuid_module.UUID(uuid)) if uuid else str(uuid_module.uuid4())
        self._runner = Runner(db.rows, self.uuid, INLINE_AGENT, owner=db)
        self._lock = threading.RLock()
        self._running_in: int | None = None  # thread running jobs now (re-entrant puts)

    def __repr__(self) -> str:
        return f"<jobq.testing.InlineRunner {self.uuid} {self.queues}>"

    def run_due(self, queues: Iterable[str] | None = None) -> list[Job]:
        """Run every due job of `queues` (default: all queues this runner knows), including
        the follow-up jobs and callbacks they release, until none is due; returns the jobs
        run, refreshed, in order. A put made by a running job only records its queue: the
        outer loop runs it next."""
        names = self.queues if queues is None else list(queues)
        for name in names:
            if name not in self.queues:
                self.queues.append(name)
        if self._running_in == threading.get_ident():
            return []  # called from inside a job run by this loop: the loop picks it up
        ran: list[int] = []
        with self._lock:
            self._running_in = threading.get_ident()
            try:
                progress = True
                while progress:
                    progress = False
                    for name in list(self.queues):
                        while self._run_one(name, ran):
                            progress = True
            finally:
                self._running_in = None
        return [self.db.get_job(i) for i in ran]

    def _run_one(self, queue: str, ran: list[int]) -> bool:
        if len(ran) >= self.max_jobs:
            due = due_pending(self.db, [queue])
            if due:
                raise RuntimeError(
                    f"inline mode ran {self.max_jobs} jobs and {describe_job(due[0])} is still "
                    f"due (a job that keeps putting jobs?); raise max_jobs if that is intended"
                )
        # It runs the job at once: the claim starts it (so jobs naming a rate limit, which are
        # claimed only to start, are run too).
        records = self.db.store.claim(
            queue, self.uuid, INLINE_AGENT, 1, self.db.clock.now(), start=1
        )
        if not records:
            return False
        ran.append(records[0].id)
        self._runner.run(records[0])
        return True

    # -- hooks -------------------------------------------------------------------------------
    def _after_put(self, queue: str, jobs: list[Job], committed: bool) -> None:
        if queue not in self.queues:
            self.queues.append(queue)
        if not committed or self._running_in == threading.get_ident():
            return
        self.run_due()
        for job in jobs:
            if job.id is not None:
                job.refresh()

    def _clock_moved(self) -> None:
        if self._running_in != threading.get_ident():
            self.run_due()


@contextmanager
def inline(
    db: Database, *, queues: Iterable[str] = ("",), max_jobs: int = 1000
) -> Iterator[InlineRunner]:
    """Turn on inline mode for `db` in this block (see the module docstring); yields the
    `InlineRunner`, whose `run_due()` runs what became due since."""
    if db.rows.after_put is not None:
        raise RuntimeError(f"{db!r} already has inline mode (or another put hook) on")
    runner = InlineRunner(db, queues=queues, max_jobs=max_jobs)
    unsubscribe: Callable[[], None] | None = None
    on_change = getattr(db.clock, "on_change", None)
    if callable(on_change):
        unsubscribe = on_change(runner._clock_moved)
    db.rows.after_put = runner._after_put
    try:
        yield runner
    finally:
        db.rows.after_put = None
        if unsubscribe is not None:
            unsubscribe()


def run_due(db: Database, queues: Iterable[str] = ("",)) -> list[Job]:
    """Run every due job of `queues` of `db` now, in this thread, as inline mode does; returns
    the jobs run."""
    return InlineRunner(db, queues=queues).run_due()
