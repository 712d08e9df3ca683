"""Async jobs: `async def` callables run on the dispatcher's event loop, many at once.

The runner performs a job as a generator of steps (`Runner._steps`): its blocking steps (the
fenced start, decoding, storing the outcome, the retry policy's decisions) are plain code;
where the job's call, `setup` or `teardown` gives an awaitable, the generator yields it.
`AsyncRuntime` drives such a generator: each awaitable runs as a task on one asyncio loop (a
daemon thread of the dispatcher) in the job's own `contextvars.Context` (so `jobq.local` works
in the coroutine and in the tasks it creates), and the blocking steps in between run on a
small thread pool. No thread waits while a coroutine is suspended.

Capacity: an async job counts against its agent's `size` from its claim until its outcome is
stored, like a threaded one (see `AgentPool`), but holds no agent thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import logging
import threading
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

from jobq.model.bound import Bound
from jobq.worker.settling import when_done

if TYPE_CHECKING:
    from jobq.model.job import Job

events_log = logging.getLogger("jobq.events")

# A job's steps: yields the awaitables it needs resolved, is sent their results (or thrown
# their exceptions), and returns when the job's outcome is stored, or a future of that store
# still committing.
Steps = Generator[Awaitable[Any], Any, None]
# How an awaitable ended: (raised, value or exception).
Settled = tuple[bool, Any]

DEFAULT_THREADS = 8  # threads for the blocking steps of async jobs (store calls, decoding)


def is_async_job(job: Job) -> bool:
    """True if the job's callable is a coroutine function (or an object whose `__call__` is),
    or its Job class has an `async def` setup or teardown. Asked of every claimed job, by the
    dispatcher's thread: the answers for plain functions and classes are cached."""
    func = job.callable
    if isinstance(func, Bound):  # Job.bind: the function it wraps is what runs
        func = func.func
    if type(func) is types.FunctionType:
        if _is_async_function(func):
            return True
    elif inspect.iscoroutinefunction(func) or (
        not inspect.isroutine(func) and inspect.iscoroutinefunction(type(func).__call__)
    ):
        return True
    # A class is hashable; mypy reads type[Job] against Job's instance __hash__.
    return _has_async_hooks(type(job))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=4096)
def _is_async_function(func: types.FunctionType) -> bool:
    return inspect.iscoroutinefunction(func)


@functools.lru_cache(maxsize=1024)
def _has_async_hooks(cls: type[Job]) -> bool:
    return inspect.iscoroutinefunction(cls.setup) or inspect.iscoroutinefunction(cls.teardown)


def resolved(value: Any) -> Generator[Awaitable[Any], Any, Any]:
    """`value = yield from resolved(f())`: f's value, awaited first if it is awaitable."""
    if value is not None and inspect.isawaitable(value):  # None: most set-ups and jobs
        value = yield value
    return value


def advance(steps: Steps, settled: Settled) -> tuple[bool, Any]:
    """Resume `steps` with how its last awaitable ended: (False, its next awaitable), or
    (True, what it returned) once it has finished."""
    raised, value = settled
    try:
        awaitable = steps.throw(value) if raised else steps.send(value)
    except StopIteration as stop:
        return True, stop.value
    return False, awaitable


def _coroutine(awaitable: Awaitable[Any]) -> Coroutine[Any, Any, Any]:
    if inspect.iscoroutine(awaitable):
        return awaitable

    async def wait() -> Any:
        return await awaitable

    return wait()


def _settled(task: asyncio.Task[Any]) -> Settled:
    if task.cancelled():
        return True, asyncio.CancelledError()
    error = task.exception()
    if error is not None:
        return True, error
    return False, task.result()


def run_to_end(steps: Steps, awaitable: Awaitable[Any], context: contextvars.Context) -> None:
    """Drive `steps` to the end in this thread, each awaitable on a private event loop (for a
    runner without a dispatcher, such as jobq.testing's inline mode)."""
    while True:
        finished, awaitable = context.run(advance, steps, _await_here(awaitable, context))
        if finished:
            return


def _await_here(awaitable: Awaitable[Any], context: contextvars.Context) -> Settled:
    def run() -> Settled:
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(_coroutine(awaitable), context=context)
            loop.run_until_complete(asyncio.wait([task]))
            loop.run_until_complete(loop.shutdown_asyncgens())
            return _settled(task)
        finally:
            loop.close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    # This thread already runs an event loop (an async test using inline mode): use another.
    with concurrent.futures.ThreadPoolExecutor(1) as helper:
        return helper.submit(run).result()


class AsyncRuntime:
    """One dispatcher's event loop (started on first use, in a daemon thread) and the thread
    pool for the blocking steps of its async jobs."""

    def __init__(self, name: str = "jobq-aio", *, threads: int = DEFAULT_THREADS) -> None:
        self.name = name
        self.threads = threads
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._jobs: set[concurrent.futures.Future[None]] = set()  # resumed, not finished
        # Awaitables of jobs, with the job's context (loop thread only).
        self._tasks: dict[asyncio.Task[Any], contextvars.Context] = {}
        self._drivers: set[asyncio.Task[None]] = set()

    @property
    def started(self) -> bool:
        return self._loop is not None

    def running(self) -> int:
        """Async jobs waiting on the loop or between two awaits now."""
        with self._lock:
            return len(self._jobs)

    def _start(self) -> tuple[asyncio.AbstractEventLoop, concurrent.futures.ThreadPoolExecutor]:
        with self._lock:
            if self._loop is None or self._executor is None:
                loop = asyncio.new_event_loop()
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    self.threads, thread_name_prefix=f"{self.name}-step"
                )
                self._thread = threading.Thread(
                    target=self._serve, args=(loop,), name=f"{self.name}-loop", daemon=True
                )
                self._thread.start()
                self._loop = loop
            return self._loop, self._executor

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        except BaseException as error:  # a job's SystemExit/KeyboardInterrupt ends up here
            events_log.critical("event loop %s stopped: %r", self.name, error, exc_info=True)

    def submit(self, fn: Callable[[Any], Any], item: Any) -> None:
        """Run `fn(item)` on the step threads (an async job's first, blocking steps)."""
        _, executor = self._start()
        executor.submit(fn, item)

    def resume(
        self, steps: Steps, awaitable: Awaitable[Any], context: contextvars.Context
    ) -> concurrent.futures.Future[None]:
        """Go on with `steps` from `awaitable` on the loop; the future ends with the steps."""
        loop, executor = self._start()
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._lock:
            self._jobs.add(future)
        future.add_done_callback(self._forget)
        loop.call_soon_threadsafe(self._begin, steps, awaitable, context, future, executor)
        return future

    def _forget(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._jobs.discard(future)

    def _begin(self, *args: Any) -> None:
        assert self._loop is not None
        driver = self._loop.create_task(self._drive(*args))
        self._drivers.add(driver)
        driver.add_done_callback(self._drivers.discard)

    async def _drive(
        self,
        steps: Steps,
        awaitable: Awaitable[Any],
        context: contextvars.Context,
        future: concurrent.futures.Future[None],
        executor: concurrent.futures.ThreadPoolExecutor,
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                # The job's awaitable runs in the job's context; this driver does not, so that
                # the context is never entered by two threads at once.
                task = loop.create_task(_coroutine(awaitable), context=context)
                self._tasks[task] = context
                try:
                    await asyncio.wait([task])
                finally:
                    self._tasks.pop(task, None)
                finished, awaitable = await loop.run_in_executor(
                    executor, context.run, advance, steps, _settled(task)
                )
                if finished:
                    # Steps may end with their outcome still committing: the job ends then.
                    when_done(awaitable, lambda: future.set_result(None))
                    return
        except BaseException as error:
            if not future.done():
                future.set_exception(error)
            if not isinstance(error, Exception):
                raise

    def cancel(self, timeout: float) -> int:
        """Cancel the awaitables of every async job now running (CancelledError is raised at
        their await); wait up to `timeout` s for those jobs to end. Returns how many there were."""
        with self._lock:
            loop, jobs = self._loop, list(self._jobs)
        if loop is None or not jobs:
            return 0
        loop.call_soon_threadsafe(self._cancel_tasks)
        concurrent.futures.wait(jobs, timeout)
        return len(jobs)

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def cancel_where(self, match: Callable[[contextvars.Context], bool]) -> None:
        """Cancel the awaitables of the async jobs whose context `match` accepts (a job
        taken away after its time limit): `CancelledError` is raised at their await."""
        with self._lock:
            loop = self._loop
        if loop is None:
            return

        def cancel() -> None:
            for task, context in list(self._tasks.items()):
                if match(context):
                    task.cancel()

        loop.call_soon_threadsafe(cancel)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the loop and the step threads (a later use starts new ones)."""
        with self._lock:
            loop, thread, executor = self._loop, self._thread, self._executor
            self._loop = self._thread = self._executor = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout)
                if not thread.is_alive():
                    loop.close()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
