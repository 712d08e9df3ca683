"""Retry policies: what to do when a job raises, its commit fails, or its worker dies.

Each hook answers with a decision:
- `True`: retry now (for an interruption: back to the front of the queue);
- `False` or `None`: give up (the failure becomes the result; an interruption becomes an
  `AbortedError` failure);
- a `datetime` or `timedelta`: reschedule the job to run at that time (a time already past,
  or a zero or negative delta, means the front of the queue now).

A policy is built for each run of a job from its import path and its saved `data`
(counts that must survive across attempts and processes). The counts of one run are in
`run_counts` (the original's per-call `data_cache`): job errors and commit errors of one run
add up. Subclass `RetryPolicy` for a custom policy and pass the class to `put(retry_policy=...)`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

from jobq.errors import is_conflict, is_disconnect
from jobq.model.failure import Failure

trace_log = logging.getLogger("jobq.trace")
events_log = logging.getLogger("jobq.events")

Decision = bool | dt.datetime | dt.timedelta | None


class RetryPolicy:
    """Base policy: never retries. Override the hooks you need."""

    log_every: ClassVar[int] = 5

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        *,
        job_label: str = "job",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.data: dict[str, Any] = dict(data or {})
        self.run_counts: dict[str, int] = {}
        self.job_label = job_label
        self.sleep = sleep

    # -- hooks -----------------------------------------------------------------------------
    def job_error(self, failure: Failure, error: BaseException) -> Decision:
        """The callable (or setup) raised `error`."""
        return False

    def commit_error(self, failure: Failure, error: BaseException) -> Decision:
        """Storing the result raised `error`; True reruns the callable from scratch."""
        return False

    def interrupted(self) -> Decision:
        """The job was running in a worker that died or stopped."""
        return False

    # -- helpers for subclasses ------------------------------------------------------------
    def count(self, kind: str, failure: Failure | None = None) -> int:
        """Count one more `kind` in this run and in the saved totals; return the run count."""
        self.run_counts[kind] = self.run_counts.get(kind, 0) + 1
        self.data[kind] = int(self.data.get(kind, 0)) + 1
        if failure is not None:
            self.data[f"last_{kind}"] = str(failure)
        return self.run_counts[kind]

    def _log_retry(self, kind: str, n: int, retrying: bool) -> None:
        if retrying and (n == 1 or n % self.log_every == 0):
            trace_log.warning(
                "%s requests another attempt after %d counts of %s", self.job_label, n, kind
            )
        elif not retrying:
            trace_log.warning("%s is not retrying after %d counts of %s", self.job_label, n, kind)


def _classify(error: BaseException) -> str:
    if is_disconnect(error):
        return "disconnect"
    if is_conflict(error):
        return "conflict"
    return "other"


def _disconnect_backoff(n: int) -> float:
    """5, 10, 15, ... 60, 60 seconds: the original's reconnect backoff."""
    return float(min(60, 5 + 5 * (n - 1)))


class RetryCommonFourTimes(RetryPolicy):
    """The default for jobs: conflicts retried up to 5 attempts in all (job and commit errors
    together), disconnects retried forever with backoff, other errors not retried, and up to
    10 attempts in all when interrupted."""

    max_conflicts: ClassVar[int] = 5
    max_interruptions: ClassVar[int | None] = 9

    def _transient(self, failure: Failure, error: BaseException) -> Decision:
        kind = _classify(error)
        if kind == "disconnect":
            n = self.count("disconnect", failure)
            self._log_retry(kind, n, True)
            self.sleep(_disconnect_backoff(n))
            return True
        if kind == "conflict":
            self.count("conflict", failure)
            n = self.run_counts["conflict"]
            retrying = n < self.max_conflicts
            self._log_retry(kind, n, retrying)
            return retrying
        return False

    def job_error(self, failure: Failure, error: BaseException) -> Decision:
        return self._transient(failure, error)

    def commit_error(self, failure: Failure, error: BaseException) -> Decision:
        return self._transient(failure, error)

    def interrupted(self) -> Decision:
        n = int(self.data.get("interruptions", 0)) + 1
        self.data["interruptions"] = n
        retrying = self.max_interruptions is None or n <= self.max_interruptions
        trace_log.info(
            "%s interrupted %d time(s): %s",
            self.job_label,
            n,
            "retrying" if retrying else "aborting",
        )
        return retrying


class RetryCommonForever(RetryCommonFourTimes):
    """The default for callbacks: conflicts and disconnects retried forever, any commit error
    retried forever (other kinds with a 0, 1, 2 ... 60 s backoff and CRITICAL logs), and
    interruptions always retried. Make sure CRITICAL logs reach a human."""

    max_conflicts: ClassVar[int] = 0  # 0: no limit
    max_interruptions: ClassVar[int | None] = None

    def job_error(self, failure: Failure, error: BaseException) -> Decision:
        kind = _classify(error)
        if kind == "conflict":
            n = self.count("conflict", failure)
            self._log_retry(kind, n, True)
            return True
        return self._transient(failure, error)

    def commit_error(self, failure: Failure, error: BaseException) -> Decision:
        kind = _classify(error)
        if kind != "other":
            return self.job_error(failure, error)
        n = self.count("other_commit", failure)
        if n == 1 or n % self.log_every == 0:
            events_log.critical(
                "%s commit failed %d time(s) with an unexpected error; retrying forever: %s",
                self.job_label,
                n,
                failure,
            )
        self.sleep(float(min(60, n - 1)))
        return True


class NeverRetry(RetryPolicy):
    """For jobs with effects outside the database (payments, e-mail): never retried.
    Handle the outcome in callbacks."""


def policy_path(policy: type[RetryPolicy]) -> str:
    """The import path a policy class is stored under."""
    if not (isinstance(policy, type) and issubclass(policy, RetryPolicy)):
        raise TypeError(
            f"retry_policy must be a RetryPolicy subclass (for example jobq.NeverRetry), "
            f"got {policy!r}"
        )
    if "<locals>" in policy.__qualname__:
        raise TypeError(f"retry policy {policy.__qualname__} must be defined at module level")
    return f"{policy.__module__}:{policy.__qualname__}"
