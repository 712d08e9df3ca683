"""`async def` job functions for tests/integration/test_async.py; importable by workers.

State is kept in jobfuncs' per-token records (CALLS, GATES, RUNNING, MAX_RUNNING)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import jobfuncs
from jobfuncs import _STATE_LOCK, GATES, MAX_RUNNING, RUNNING, calls, record_call

import jobq

THREADS_SEEN: dict[str, set[str]] = {}


async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


async def async_fail(message: str = "async boom") -> None:
    await asyncio.sleep(0)
    raise RuntimeError(message)


async def async_value_error_until(token: str, failures: int, value: Any) -> Any:
    await asyncio.sleep(0)
    record_call(token, "call")
    n = calls(token).count("call")
    if n <= failures:
        raise ValueError(f"simulated value error {n}")
    return value


async def async_conflict_until(token: str, failures: int, value: Any) -> Any:
    await asyncio.sleep(0)
    record_call(token, "call")
    n = calls(token).count("call")
    if n <= failures:
        raise jobq.ConflictError(f"simulated conflict {n}")
    return value


async def async_describe(result: Any) -> str:
    """An async callback."""
    await asyncio.sleep(0)
    return f"async got {result!r}"


async def async_double_later(value: int) -> jobq.Job:
    """Returns a job: this job completes with that job's result."""
    await asyncio.sleep(0)
    return jobq.Job(jobfuncs.double, value)


_probe: contextvars.ContextVar[str] = contextvars.ContextVar("probe", default="unset")


async def async_local_info() -> dict[str, Any]:
    """What jobq.local says in the coroutine and in a task it creates (ContextVars)."""
    _probe.set("set in the job")

    async def child() -> tuple[int | None, str]:
        await asyncio.sleep(0)
        return jobq.local.job().id, _probe.get()

    child_id, child_probe = await asyncio.create_task(child())
    return {
        "id": jobq.local.job().id,
        "agent": jobq.local.agent_name(),
        "dispatcher": jobq.local.dispatcher_uuid(),
        "child_id": child_id,
        "child_probe": child_probe,
        "thread": threading.current_thread().name,
    }


async def async_gated(token: str, value: Any = None) -> Any:
    """Counts concurrent runs for `token` and waits (without a thread) for its gate."""
    with _STATE_LOCK:
        RUNNING[token] = RUNNING.get(token, 0) + 1
        MAX_RUNNING[token] = max(MAX_RUNNING.get(token, 0), RUNNING[token])
        gate = GATES.setdefault(token, threading.Event())
        THREADS_SEEN.setdefault(token, set()).add(threading.current_thread().name)
    try:
        while not gate.is_set():
            await asyncio.sleep(0.01)
        return value
    finally:
        with _STATE_LOCK:
            RUNNING[token] -= 1


async def async_wait_forever(token: str) -> None:
    """Runs until cancelled; records "started" and "cancelled"."""
    record_call(token, "started")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        record_call(token, "cancelled")
        raise


async def async_insert_row(value: str) -> str:
    await asyncio.sleep(0)
    jobfuncs._insert(jobq.local.connection(), value)
    return value


async def async_gated_insert(token: str, value: str) -> str:
    """Waits for its gate, then writes a row through its job's own transaction."""
    await async_gated(token)
    jobfuncs._insert(jobq.local.connection(), value)
    return value


class AsyncRecordingJob(jobq.Job):
    """Async setup and teardown, recorded in CALLS[token] (the first argument)."""

    async def setup(self) -> Any:
        await asyncio.sleep(0)
        record_call(self.args[0], "setup")
        return "info"

    async def teardown(self, setup_info: Any) -> None:
        await asyncio.sleep(0)
        record_call(self.args[0], f"teardown:{setup_info}")


async def async_step(token: str, name: str, value: Any = None) -> Any:
    await asyncio.sleep(0)
    record_call(token, name)
    return value
