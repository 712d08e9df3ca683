"""The outcome decision: what a retry policy's answer means for one job, as one value.

A policy hook (`job_error`, `commit_error`, `interrupted`) answers True, False/None, or a
time (see `jobq.model.retry`). `decide` turns that answer into `RetryNow`, `RetryAt` or
`Fail`, applying the rules every caller shares: no retry after the job's deadline
(`begin_after + begin_by`), a callback is never rescheduled (only retried now), and a naive
time means UTC. Pure: the caller passes the time, and the worker applies the value with one
store call (`jobq.worker.outcome`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from jobq.model.failure import Failure
from jobq.model.retry import Decision


@dataclass(frozen=True, slots=True)
class RetryNow:
    """Run the job again at once: in the same claim after an error, at the front of its
    queue when it cannot be (an interruption, an outcome already handed to a group commit).
    `refused` is the time a callback asked for: callbacks are only ever retried now."""

    refused: dt.datetime | dt.timedelta | None = None


@dataclass(frozen=True, slots=True)
class RetryAt:
    """Put the job back in its queue until `at` (timezone-aware; a past time is the front
    of the queue now)."""

    at: dt.datetime


@dataclass(frozen=True, slots=True)
class Fail:
    """Give up: `failure` becomes the job's result. `why` says who gave up: the policy, the
    job's deadline (the policy asked for a retry too late), or the policy's hook itself,
    which raised `policy_error` instead of answering."""

    failure: Failure
    why: Literal["policy", "deadline", "policy failed"] = "policy"
    policy_error: Exception | None = None


Decided = RetryNow | RetryAt | Fail


@dataclass(frozen=True, slots=True)
class PolicyFailed:
    """What a policy hook raised instead of answering (see `ask`)."""

    error: Exception


def ask(hook: Callable[..., Decision], *args: object) -> Decision | PolicyFailed:
    """The hook's answer to `args`, or `PolicyFailed` if it raised: a broken policy gives
    up on its job, it never stops a worker."""
    try:
        return hook(*args)
    except Exception as error:
        return PolicyFailed(error)


def decide(
    answer: Decision | PolicyFailed,
    failure: Failure,
    *,
    now: dt.datetime,
    deadline: dt.datetime | None,
    is_callback: bool,
) -> Decided:
    """The one value `answer` means for a job at `now`; `failure` is what it fails with if
    nothing is retried. Anything but True or a time gives up."""
    if isinstance(answer, PolicyFailed):
        return Fail(failure, "policy failed", answer.error)
    if answer is not True and not isinstance(answer, dt.datetime | dt.timedelta):
        return Fail(failure)
    if deadline is not None and now > deadline:
        return Fail(failure, "deadline")
    if answer is True:
        return RetryNow()
    if is_callback:
        return RetryNow(refused=answer)
    at = now + answer if isinstance(answer, dt.timedelta) else answer
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)  # the original treats a naive time as UTC
    return RetryAt(at)


def deadline_of(begin_after: dt.datetime, begin_by: float | None) -> dt.datetime | None:
    """`begin_after + begin_by` (seconds), after which a job may neither start nor be
    retried; None without a `begin_by`."""
    if begin_by is None:
        return None
    return begin_after + dt.timedelta(seconds=begin_by)


def failure_log_level(chosen: int | None, is_callback: bool) -> int:
    """The level a job's failure is logged at: its own `failure_log_level`, else CRITICAL
    for a callback (nothing else will report it) and ERROR for a job."""
    if chosen:
        return chosen
    return logging.CRITICAL if is_callback else logging.ERROR
