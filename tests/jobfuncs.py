"""Job functions used by the tests; importable by worker subprocesses."""

from __future__ import annotations

import time
from typing import Any

import jobq


def add(a: int, b: int) -> int:
    return a + b


def double(x: int) -> int:
    return 2 * x


def identity(x: Any) -> Any:
    return x


def fail(message: str = "boom") -> None:
    raise RuntimeError(message)


def sleep_then(seconds: float, value: Any = None) -> Any:
    time.sleep(seconds)
    return value


def describe_result(result: Any) -> str:
    return f"got {result!r}"


def returns_failure() -> jobq.Failure:
    try:
        raise ValueError("returned, not raised")
    except ValueError as error:
        return jobq.Failure.from_exception(error)


def put_inner(value: int) -> jobq.Job:
    """Puts a follow-up job itself and returns it: this job completes with its result."""
    return jobq.local.queue().put(jobq.Job(double, value))


def return_unstored_inner(value: int) -> jobq.Job:
    return jobq.Job(double, value)


def current_job_id() -> int | None:
    return jobq.local.job().id
