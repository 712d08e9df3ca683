"""Execution time limits as a dispatcher enforces them on the jobs its threads run.

A job runs under a limit (`put(..., timeout=...)`, saved with the job; else the worker's
`job_timeout`) measured by this process's monotonic clock from its start. Its runner
registers it here while its steps run (`watch` / `forget`); a job without a limit is never
registered, so it costs nothing. A thread of its own (`Timeouts`) calls `check` at each
moment due:

- at the limit, the job's stop is requested: `jobq.local.stop_requested()` answers True. A
  job that ends then (returns or raises) fails with `jobq.JobTimeout` through its retry
  policy, written by its own thread, fenced as any outcome;
- once the grace period has passed too, the attempt is taken away (`Runner.take_away`): what
  the job does through `jobq.local` raises `ReassignedError`, its own connection is rolled
  back and closed under it, and the timeout is written fenced on (id, attempt, dispatcher)
  through the job's retry policy, so the write of the runaway's own outcome, whenever it
  comes, finds the job no longer its own and changes nothing. An async job is cancelled then
  (`CancelledError` at its await). A thread cannot be killed: it runs until its call returns,
  still counted against its agent's size (so a runaway never lets an agent start more threads
  than its size), though a stop of the worker no longer waits for it. Under
  `jobq worker --processes N` a threaded runaway makes its process stop (gracefully, for the
  other jobs) and exit at once, and the supervisor starts its replacement.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobq.errors import JobTimeout
from jobq.jobs.context import Guard

events_log = logging.getLogger("jobq.events")

RETRY_AFTER = 1.0
"""Seconds before a take-away that failed (the database away) is tried again."""

RUNAWAY_EXIT = 75
"""The exit code of a `jobq worker` process that stopped because a thread of it still runs a
job taken away after its time limit: its supervisor (`--processes`) replaces it at once."""


@dataclass(slots=True, eq=False)
class Watched:
    """One run of a job under a time limit (`limit` and `grace` in seconds, `started` by
    time.monotonic). `attempt`, `policy` and `context` are the run's current ones (set by
    the runner); `take_away` is its runner's."""

    job: Any  # jobq.worker.outcome.Fenced
    limit: float
    grace: float
    take_away: Callable[[Watched], bool]
    revoke: Callable[[Watched], None]
    is_async: bool = False
    started: float = field(default_factory=time.monotonic)
    guard: Guard = field(default_factory=Guard)
    attempt: Any = None
    policy: Any = None
    context: Any = None
    taken: bool = False  # the timeout is written (or the job was found ended)
    not_before: float = 0.0  # a take-away that failed is tried again from then

    @property
    def stop_at(self) -> float:
        return self.started + self.limit

    @property
    def take_at(self) -> float:
        return self.started + self.limit + self.grace

    def restart(self) -> None:
        """The runner runs the call again in its claim (its policy retried now): a new run,
        timed from now."""
        self.started = time.monotonic()
        self.guard = Guard()


def revoke(watched: Watched) -> None:
    """On the time limits' thread, first: take the attempt of a job past its limit and
    grace away in this process (what it does through `jobq.local` is refused, its own
    transaction ends, releasing its locks: on SQLite, the database's write lock)."""
    if watched.guard.taken is None:
        record = watched.job.record
        watched.guard.taken = (
            f"job {record.id} attempt {record.attempt} was taken away after its time limit "
            f"({watched.limit:g} s, and {watched.grace:g} s of grace); nothing it writes "
            f"now is kept"
        )
        if watched.attempt is not None:
            watched.attempt.revoke()


def over_limit(watched: Watched | None, label: str) -> JobTimeout | None:
    """Once a job's call ended: `ReassignedError` if its attempt was taken away; the timeout
    it fails with if it ran past its limit (its stop was requested); else None."""
    if watched is None:
        return None
    watched.guard.check()
    if not watched.guard.stop:
        return None
    return JobTimeout(
        f"{label} ran past its time limit of {watched.limit:g} s; it ended once its "
        f"stop was requested"
    )


class Timeouts:
    """The runs under a time limit of one dispatcher, checked on a thread of their own
    (started with the first run watched): not the dispatcher's, which may wait for the
    database (on SQLite, for the write lock of the very runaway to take away)."""

    def __init__(
        self,
        *,
        job_timeout: float | None = None,
        grace: float | None = None,
        on_runaway: Callable[[], None] | None = None,
    ) -> None:
        self.job_timeout = job_timeout  # the worker's default limit, for jobs without one
        self.grace = grace  # a configured grace; None: a tenth of the limit, at most 30 s
        self.on_runaway = on_runaway  # a threaded job was taken away (still running)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._runs: set[Watched] = set()
        self._thread: threading.Thread | None = None
        self._closed = False
        # When (time.monotonic) the thread looks again by itself: a run whose limit ends
        # later needs no wake-up (most do: the thread looks at least every second).
        self._looks_at = 0.0

    def watch(self, run: Watched) -> Watched:
        with self._lock:
            self._runs.add(run)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._serve, name="jobq-time-limits", daemon=True
                )
                self._thread.start()
            if run.stop_at < self._looks_at:
                self._changed.notify()
        return run

    def forget(self, run: Watched) -> None:
        with self._lock:
            self._runs.discard(run)

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)

    def close(self) -> None:
        """Stop the thread (the dispatcher stopped); a later `watch` does not restart it."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
            self._changed.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def reopen(self) -> None:
        """The dispatcher runs again."""
        with self._lock:
            self._closed = False

    def _serve(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                at = self._next_at()
                now = time.monotonic()
                wait = 1.0 if at is None else max(0.0, at - now)
                if wait > 0:
                    self._looks_at = now + min(wait, 1.0)
                    self._changed.wait(min(wait, 1.0))
                    self._looks_at = 0.0  # awake: a run watched now is seen by the next look
                    continue
            try:
                self.check(time.monotonic())
            except Exception as error:  # never ends the thread
                events_log.critical("time limits: unexpected error %r", error, exc_info=True)
                time.sleep(0.1)

    def next_at(self) -> float | None:
        """When (time.monotonic) `check` next has something to do; None if nothing is
        watched."""
        with self._lock:
            return self._next_at()

    def _next_at(self) -> float | None:
        due = [
            max(run.take_at, run.not_before) if run.guard.stop else run.stop_at
            for run in self._runs
            if not run.taken
        ]
        return min(due, default=None)

    def check(self, now: float) -> int:
        """Request the stop of the runs past their limit and take away those past their
        grace too; how many were taken away."""
        with self._lock:
            runs = [run for run in self._runs if not run.taken and now >= run.stop_at]
        taken = 0
        for run in runs:
            if now >= run.take_at and now >= run.not_before:
                # First end every runaway's own transaction: on SQLite one holding the write
                # lock would make the writes below (and every other writer) wait for it.
                run.revoke(run)
        for run in runs:
            if not run.guard.stop:
                run.guard.stop = True
                events_log.warning(
                    "%s ran past its time limit of %g s: its stop is requested; it is taken "
                    "away in %g s unless it ends",
                    run.job.label,
                    run.limit,
                    run.grace,
                )
            if now < run.take_at or now < run.not_before:
                continue
            try:
                done = run.take_away(run)
            except Exception as error:  # the database away, say: tried again in a while
                run.not_before = now + RETRY_AFTER
                events_log.warning(
                    "%s: could not take it away yet after its time limit (%r); retrying in %g s",
                    run.job.label,
                    error,
                    RETRY_AFTER,
                )
                continue
            run.taken = True
            if done:
                taken += 1
                if not run.is_async and self.on_runaway is not None:
                    self.on_runaway()
        return taken
