"""Job functions for jobq.testing's tests (importable: in-process workers run them)."""

from __future__ import annotations

import threading
from typing import Any

import jobq

GATES: dict[str, threading.Event] = {}
CALLS: dict[str, list[Any]] = {}
_LOCK = threading.Lock()


def add(a: int, b: int) -> int:
    return a + b


def double(x: int) -> int:
    return x * 2


def fail(message: str = "boom") -> None:
    raise ValueError(message)


def record(token: str, value: Any) -> Any:
    with _LOCK:
        CALLS.setdefault(token, []).append(value)
    return value


def calls(token: str) -> list[Any]:
    with _LOCK:
        return list(CALLS.get(token, []))


def gate(token: str) -> threading.Event:
    with _LOCK:
        return GATES.setdefault(token, threading.Event())


THREADS: dict[str, list[threading.Thread]] = {}


def gated(token: str, value: Any = None) -> Any:
    """Waits (up to 30 s) until the test opens the token's gate (see `release`)."""
    with _LOCK:
        THREADS.setdefault(token, []).append(threading.current_thread())
    if not gate(token).wait(30):
        raise RuntimeError("gate never opened")
    return value


def release(token: str, timeout: float = 10.0) -> None:
    """Open the token's gate, and wait until the worker threads that ran `gated` for it have
    ended (their dispatcher stopped): nothing of theirs outlives the test's database."""
    gate(token).set()
    with _LOCK:
        threads = list(THREADS.get(token, []))
    for thread in threads:
        thread.join(timeout)


def put_follow_up(value: int) -> int:
    """Puts `double(value)` in its own queue and returns `value`."""
    jobq.local.queue().put(jobq.Job(double, value))
    return value


def returns_job(value: int) -> jobq.Job:
    """Completes with the result of a new job (put by jobq in the same queue)."""
    return jobq.Job(double, value)


def put_in(queue_name: str, value: int) -> int:
    """Puts `double(value)` in another queue."""
    db = jobq.local.queue().db
    db.queue(queue_name).put(jobq.Job(double, value))
    return value


def describe(result: Any) -> str:
    if isinstance(result, jobq.Failure):
        return f"failed: {result.type_name}"
    return f"got {result!r}"


def forever(n: int) -> int:
    """Puts itself again: a job that never lets a queue become idle."""
    jobq.local.queue().put(jobq.Job(forever, n + 1))
    return n


def annotate(name: str, value: Any) -> None:
    job = jobq.local.job()
    assert job.id is not None
    jobq.local.queue().db.store.set_annotation(job.id, name, value)


def reject_all(job: jobq.Job) -> bool:
    """An agent filter that takes nothing."""
    return False


def thread_name() -> str:
    return threading.current_thread().name
