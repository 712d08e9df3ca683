"""Retry policies: what to do when a job raises, its commit fails, or its worker dies.

Each hook answers with a decision:
- `True`: retry now (for an interruption: back to the front of the queue);
- `False` or `None`: give up (the failure becomes the result; an interruption becomes an
  `AbortedError` failure);
- a `datetime` or `timedelta`: reschedule the job to run at that time (a time already past,
  or a zero or negative delta, means the front of the queue now).

A policy is built for each run of a job from its import path and its saved `data`, which
is stored with the job at every outcome (a retry now, a reschedule, a result) and so survives
across attempts, claims and processes. Which counts are which:

- `self.count(kind)` adds one to `data[kind]` and returns that total: the count over the
  job's whole life (every run, every worker), so that a limit or a backoff computed from it
  holds however the job was retried (in its claim, or put back in its queue after a failed
  group commit). The default policies count `conflict`, `disconnect`, `other_commit` (job and
  commit errors together) and `interruptions`; `RetryWithBackoff` counts `error`.
- `self.run_counts[kind]` counts the same within this one run of the policy object only (the
  original's per-call `data_cache`); it is for logs and diagnostics, never for a limit.
- `data` may also hold settings given at `put`: `data["retries"]` (`put(..., retries=N)`)
  and `data["timeout"]` (`put(..., timeout=T)`, in seconds: `jobq.model.limits`).

A run that ends without an outcome (its worker killed) stores nothing: its counts since the
last stored outcome are lost, and its interruption is counted instead.

Subclass `RetryPolicy` for a custom policy and pass the class to `put(retry_policy=...)`; for
the common case, `put(..., retries=N)` is `RetryWithBackoff` with N retries.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
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
        """Count one more `kind` in the job's saved totals (and in this run's `run_counts`);
        return the total over the job's whole life, this one included."""
        self.run_counts[kind] = self.run_counts.get(kind, 0) + 1
        total = int(self.data.get(kind, 0)) + 1
        self.data[kind] = total
        if failure is not None:
            self.data[f"last_{kind}"] = str(failure)
        return total

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


def exponential_backoff(n: int, base: float, cap: float, jitter: float) -> float:
    """The delay before retry `n` (1, 2, ...): `base` doubling with each retry, at most `cap`,
    with "equal jitter": half of that ceiling, plus `jitter` (0 <= jitter < 1) times the other
    half. Spreads jobs that failed together, yet (below the cap) never waits less than the
    retry before."""
    ceiling = min(cap, base * 2.0 ** min(max(n - 1, 0), 64))
    return ceiling / 2 + jitter * ceiling / 2


class RetryCommonFourTimes(RetryPolicy):
    """The default for jobs: conflicts retried up to 5 attempts in all (job and commit errors
    together, over the job's life), disconnects retried forever with backoff (5, 10, ... 60 s
    by the job's count of disconnects), other errors not retried, and up to 10 attempts in all
    when interrupted."""

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
            n = self.count("conflict", failure)
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


class RetryWithBackoff(RetryCommonFourTimes):
    """`put(..., retries=N)`: an ordinary exception is retried up to N more times, each after
    an exponential backoff with jitter (`exponential_backoff`: 1 s doubling, at most 300 s,
    equal jitter), then the job fails with the last error. Conflicts, disconnects and
    interruptions are handled as by the default policy. N is `data["retries"]` (saved with
    the job at `put`), else `default_retries`; the errors seen are counted in `data["error"]`
    and the last backoff chosen (seconds) is `data["backoff"]`.
    Subclass it to change the backoff (`backoff_base`, `backoff_cap`, `jitter`) and pass both:
    `put(..., retries=N, retry_policy=MyBackoff)`."""

    default_retries: ClassVar[int] = 3
    backoff_base: ClassVar[float] = 1.0
    backoff_cap: ClassVar[float] = 300.0

    @property
    def retries(self) -> int:
        """How many times an ordinary error is retried."""
        value = self.data.get("retries")
        return value if isinstance(value, int) and value >= 0 else self.default_retries

    def jitter(self) -> float:
        """A random fraction in [0, 1) for the backoff's jitter (override to fix it)."""
        return _jitter.random()

    def job_error(self, failure: Failure, error: BaseException) -> Decision:
        if _classify(error) != "other":
            return self._transient(failure, error)
        n = self.count("error", failure)
        retrying = n <= self.retries
        self._log_retry("error", n, retrying)
        if not retrying:
            return False
        # In whole milliseconds, so that the saved backoff is the one the next run is at.
        delay = round(exponential_backoff(n, self.backoff_base, self.backoff_cap, self.jitter()), 3)
        self.data["backoff"] = delay
        return dt.timedelta(seconds=delay)


_jitter = random.Random()

SETTINGS: tuple[str, ...] = ("retries", "timeout")
"""The keys of a job's retry data that are settings given at `put`, not counts: a failed job
retried by hand (`jobq retry`) keeps them and starts its counts afresh."""


def retries_of(data: dict[str, Any]) -> tuple[int | None, int]:
    """(retries allowed, retries had so far) of a job's saved retry data: `put(retries=N)`'s
    N and the ordinary errors counted, at most N; (None, 0) for a job put without it."""
    allowed = data.get("retries")
    if not isinstance(allowed, int) or isinstance(allowed, bool):
        return None, 0
    errors = data.get("error", 0)
    return allowed, min(errors, allowed) if isinstance(errors, int) else 0


def ready_policy(retries: object, retry_policy: type[RetryPolicy] | None) -> type[RetryWithBackoff]:
    """The policy class of `put(..., retries=retries, retry_policy=retry_policy)`, once
    `retries` is checked: `RetryWithBackoff`, or the `retry_policy` given if it is a subclass
    of it (its own backoff, with N retries). Any other `retry_policy` would ignore `retries`,
    so it is refused."""
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise TypeError(
            f"retries must be a whole number >= 0 (how many times to retry a job after an "
            f"error), got {retries!r}"
        )
    if retries < 0:
        raise ValueError(f"retries must be >= 0 (0: never retry an error), got {retries}")
    if retry_policy is None:
        return RetryWithBackoff
    if isinstance(retry_policy, type) and issubclass(retry_policy, RetryWithBackoff):
        return retry_policy
    raise TypeError(
        f"retries={retries} chooses the policy jobq.RetryWithBackoff, so it cannot be combined "
        f"with retry_policy={retry_policy!r}; give one of them, or a retry_policy that "
        f"subclasses jobq.RetryWithBackoff (its own backoff, with these retries)"
    )


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
