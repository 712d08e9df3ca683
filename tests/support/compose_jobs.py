"""Job functions for the composition and annotation tests; importable by worker processes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import jobq


def value(x: Any) -> Any:
    return x


def boom(message: str = "part failed") -> None:
    raise RuntimeError(message)


def boom_post(message: str, *jobs: jobq.Job) -> None:
    raise RuntimeError(message)


def results(*jobs: jobq.Job) -> tuple[Any, ...]:
    return tuple(job.result for job in jobs)


def sum_results(*jobs: jobq.Job) -> int:
    return sum(job.result for job in jobs)


def tagged(tag: str, *jobs: jobq.Job) -> tuple[str, Any]:
    """Catalogue 58: `Job(post, 'foo')` gives ('foo', results)."""
    return (tag, tuple(job.result for job in jobs))


def tagged_sum(tag: str, *jobs: jobq.Job) -> tuple[str, int]:
    return (tag, sum(job.result for job in jobs))


def describe(*jobs: jobq.Job) -> list[str]:
    """Each part as 'ok:<value>' or 'failed:<type name>'."""
    out = []
    for job in jobs:
        if isinstance(job.result, jobq.Failure):
            out.append(f"failed:{job.result.type_name.rsplit('.', 1)[-1]}")
        else:
            out.append(f"ok:{job.result}")
    return out


def append_log(path: str, text: str, seconds: float = 0.0) -> str:
    """Appends `text` to a file (start), sleeps, appends `text.` (end): shows the order."""
    with open(path, "a") as f:
        f.write(f"{text}>")
    time.sleep(seconds)
    with open(path, "a") as f:
        f.write(f"<{text} ")
    return text


def read_log(path: str, *jobs: jobq.Job) -> str:
    return Path(path).read_text().strip()


# -- dynamic extension (catalogue 59) ------------------------------------------------------------
def first() -> str:
    second_job = jobq.local.composite().add_part(jobq.Job(second))
    # A callback added to a part before it starts may add parts too.
    second_job.add_callback(jobq.Job(add_third))
    return "first"


def second() -> str:
    return "second"


def add_third(result: Any) -> None:
    jobq.local.composite().add_part(jobq.Job(value, "third"))


def first_direct() -> str:
    """Parallel variant: each part adds the next one itself while it runs."""
    jobq.local.composite().add_part(jobq.Job(second_direct))
    return "first"


def second_direct() -> str:
    jobq.local.composite().add_part(jobq.Job(value, "third"))
    return "second"


def as_list(*jobs: jobq.Job) -> list[Any]:
    return [job.result for job in jobs]


# -- interruption ----------------------------------------------------------------------------------
def wait_for_file(path: str, result: Any, timeout: float = 60.0) -> Any:
    """Runs until `path` exists (a test creates it after stopping or killing the worker)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.02)
    return result


def sum_when_file(path: str, *jobs: jobq.Job) -> int:
    wait_for_file(path, None)
    return sum(job.result for job in jobs)


def mark_then_sum(marks: str, path: str, *jobs: jobq.Job) -> int:
    """A postprocess that records each of its runs, then waits for `path`."""
    with open(marks, "a") as f:
        f.write("run\n")
    return sum_when_file(path, *jobs)


# -- annotations -----------------------------------------------------------------------------------
def hello_and_reply() -> str:
    """Catalogue 65."""
    jobq.local.set_live_annotation("hello", "from thread!")
    reply = jobq.local.get_live_annotation("reply", timeout=10, poll=0.05)
    local = jobq.local.job().annotations.get("reply", "MISSING")
    return f"reply is {reply!r}. Locally it is {local}."


def flag_and_wait(mine: str, timeout: float) -> Any:
    """Catalogue 67: set my flag, wait up to `timeout` s for the other job's (its id is my
    annotation "other", set by the test before a worker runs us)."""
    jobq.local.set_live_annotation("flag", mine)
    me = jobq.local.job()
    other_job = me._require_backend().get_job(me.annotations["other"])  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if other_job.refresh().annotations.get("flag") is not None:
            return None
        time.sleep(0.02)
    return "timed out"


def put_and_return_inner(x: int) -> jobq.Job:
    """Catalogue 66."""
    return jobq.local.queue().put(jobq.Job(value, x))


def count_with_progress(total: int, step_pause: float = 0.0) -> int:
    for done in range(1, total + 1):
        time.sleep(step_pause)
        jobq.local.progress(done, total, f"step {done}")
    return total


def loop_until_stopped(limit: float = 30.0) -> str:
    jobq.local.set_live_annotation("started", True)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if jobq.local.stop_requested():
            return "stopped"
        time.sleep(0.02)
    return "never asked"


def bad_live_annotation() -> str:
    try:
        jobq.local.set_live_annotation("x", object())
    except TypeError as error:
        return f"TypeError: {error}"
    return "accepted"


def ping_other(other_id: int) -> Any:
    """Catalogue §6's `job=`: write an annotation on another job, then wait for its reply
    there."""
    other = jobq.local.queue().db.get_job(other_id)
    jobq.local.set_live_annotation("ping", jobq.local.job().id, job=other)
    return jobq.local.get_live_annotation("pong", timeout=20, poll=0.02, job=other)
