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


def put_kept_inner(value: int, seconds: float) -> jobq.Job:
    """Puts a follow-up job kept `seconds` once completed (put(keep_result=)) and returns it:
    this job waits for it and adopts its result."""
    keep = _dt.timedelta(seconds=seconds)
    return jobq.local.queue().put(jobq.Job(double, value), keep_result=keep)


def return_unstored_inner(value: int) -> jobq.Job:
    return jobq.Job(double, value)


def current_job_id() -> int | None:
    return jobq.local.job().id


# -- worker-layer helpers (tests/integration/test_runner.py, tests/acceptance/...) ----------------
# In-process state, keyed by a per-test token so tests never see each other's records.
import datetime as _dt  # noqa: E402
import sqlite3 as _sqlite3  # noqa: E402
import threading as _threading  # noqa: E402

CALLS: dict[str, list[Any]] = {}
GATES: dict[str, _threading.Event] = {}
_STATE_LOCK = _threading.Lock()
RUNNING: dict[str, int] = {}
MAX_RUNNING: dict[str, int] = {}


def record_call(token: str, value: Any = None) -> None:
    with _STATE_LOCK:
        CALLS.setdefault(token, []).append(value)


def calls(token: str) -> list[Any]:
    with _STATE_LOCK:
        return list(CALLS.get(token, []))


def conflict_until(token: str, failures: int, value: Any) -> Any:
    """Raises jobq.ConflictError on its first `failures` calls, then returns `value`."""
    record_call(token, "call")
    n = calls(token).count("call")
    if n <= failures:
        raise jobq.ConflictError(f"simulated conflict {n}")
    return value


def value_error_until(token: str, failures: int, value: Any) -> Any:
    record_call(token, "call")
    n = calls(token).count("call")
    if n <= failures:
        raise ValueError(f"simulated value error {n}")
    return value


def logged_step(token: str, name: str, value: Any = None) -> Any:
    """Records `name` in the token's call list and returns `value`."""
    record_call(token, name)
    return value


def fail_first_then(token: str, value: Any) -> Any:
    record_call(token, "fail_first")
    if calls(token).count("fail_first") == 1:
        raise ValueError("first call fails")
    return value


def gated(token: str, value: Any = None) -> Any:
    """Counts concurrent runs for `token`, waits for its gate, returns `value`."""
    with _STATE_LOCK:
        RUNNING[token] = RUNNING.get(token, 0) + 1
        MAX_RUNNING[token] = max(MAX_RUNNING.get(token, 0), RUNNING[token])
        gate = GATES.setdefault(token, _threading.Event())
    try:
        if not gate.wait(30):
            raise RuntimeError("gate never opened")
        return value
    finally:
        with _STATE_LOCK:
            RUNNING[token] -= 1


def only_double(job: jobq.Job) -> bool:
    """An agent filter: only jobs calling `double`."""
    return job.callable is double


def not_double(job: jobq.Job) -> bool:
    return job.callable is not double


def _insert(conn: Any, value: str) -> None:
    marker = "?" if isinstance(conn, _sqlite3.Connection) else "%s"
    conn.execute(f"INSERT INTO app_rows (value) VALUES ({marker})", (value,))


def insert_row(value: str) -> str:
    """Writes a row through the job's own connection: it commits with the job's result."""
    _insert(jobq.local.connection(), value)
    return value


def insert_row_then_fail(value: str) -> None:
    _insert(jobq.local.connection(), value)
    raise RuntimeError("after the insert")


def sleep_then_insert(value: str, seconds: float = 0.0) -> str:
    """Sleeps first (so that, on SQLite, the write lock is not held while sleeping), then
    writes a row through the job's connection."""
    if seconds:
        time.sleep(seconds)
    _insert(jobq.local.connection(), value)
    return value


class RescheduleInAnHour(jobq.RetryPolicy):
    """job_error answers a delay of one hour."""

    def job_error(self, failure: jobq.Failure, error: BaseException) -> Any:
        self.count("rescheduled", failure)
        return _dt.timedelta(hours=1)


class RescheduleNow(jobq.RetryPolicy):
    """job_error answers a zero delay: back to the front of the queue."""

    def job_error(self, failure: jobq.Failure, error: BaseException) -> Any:
        self.count("rescheduled", failure)
        return _dt.timedelta(0)


class RetryValueErrorsTwice(jobq.RetryPolicy):
    """Retries ValueError up to two times in one run; nothing else."""

    def job_error(self, failure: jobq.Failure, error: BaseException) -> Any:
        if isinstance(error, ValueError):
            return self.count("value_error", failure) <= 2
        return False


class RecordingJob(jobq.Job):
    """Records setup / call / teardown in CALLS[token] (the token is the first argument);
    teardown also records the job's stored status at that moment."""

    def setup(self) -> Any:
        record_call(self.args[0], "setup")
        return "info"

    def teardown(self, setup_info: Any) -> None:
        status = str(self.refresh().status)
        record_call(self.args[0], f"teardown:{setup_info}:{status}")


class FailingSetupJob(RecordingJob):
    def setup(self) -> Any:
        record_call(self.args[0], "setup")
        raise ValueError("setup failed")


class ConflictingSetupJob(RecordingJob):
    def setup(self) -> Any:
        record_call(self.args[0], "setup")
        raise jobq.ConflictError("setup conflict")


def make_lock() -> Any:
    """Returns something that cannot be pickled."""
    return _threading.Lock()


def insert_then_conflict_once(token: str, value: str) -> str:
    """Inserts a row, then raises a conflict on the first call: the retry must not keep
    the first call's row."""
    _insert(jobq.local.connection(), value)
    record_call(token, "call")
    if len(calls(token)) == 1:
        raise jobq.ConflictError("simulated conflict after a write")
    return value


# -- queue and job scenarios (tests/integration/test_queue_and_jobs.py) ---------------------------


def multiply(a: int, b: int) -> int:
    return a * b


def echo(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Returns the effective call: (args, kwargs)."""
    return args, kwargs


def zero(result: Any) -> int:
    return 0


def tag_success(result: Any) -> tuple[str, Any]:
    return ("success", result)


def tag_failure(result: Any) -> tuple[str, Any]:
    return ("failure", result.type_name if isinstance(result, jobq.Failure) else result)


def failure_type(result: Any) -> Any:
    """A callback: the type name of a Failure it receives, else ("value", result)."""
    return result.type_name if isinstance(result, jobq.Failure) else ("value", result)


def put_inner_in(queue_name: str, value: int) -> jobq.Job:
    """Puts `double(value)` in another queue and returns it: this job waits for it."""
    return jobq.local.queue().db.queue(queue_name).put(jobq.Job(double, value))


def own_status() -> str:
    """The status of the running job, as stored."""
    return str(jobq.local.job().refresh().status)


def parent_status(result: Any) -> tuple[str, Any]:
    """A callback: its parent's stored status while the callback runs, and the result."""
    me = jobq.local.job()
    assert me.parent_id is not None
    parent = jobq.local.queue().db.get_job(me.parent_id)
    return str(parent.status), result


def insert_row_then_return_failure(value: str) -> jobq.Failure:
    """Writes a row, then *returns* a Failure: a failed result whose writes still commit."""
    _insert(jobq.local.connection(), value)
    return jobq.Failure.from_exception(ValueError("returned, not raised"))


def return_self() -> jobq.Job:
    """Returns the running job itself: it can never wait for its own result."""
    return jobq.local.job()


def return_own_callback() -> jobq.Job:
    """Returns a callback of the running job, which needs this job's result first."""
    return jobq.local.job().add_callback(describe_result)


def return_parent(result: Any) -> jobq.Job:
    """A callback that returns its parent job (already done: it adopts its result)."""
    me = jobq.local.job()
    assert me.parent_id is not None
    return jobq.local.queue().db.get_job(me.parent_id)


class FailingTeardownJob(RecordingJob):
    def teardown(self, setup_info: Any) -> None:
        record_call(self.args[0], "teardown")
        raise RuntimeError("teardown broke")


def insert_and_put(value: str) -> int:
    """Writes through the job's connection, then puts a follow-up job (a common pattern)."""
    _insert(jobq.local.connection(), value)
    follow_up = jobq.local.queue().put(jobq.Job(double, 21))
    assert follow_up.id is not None
    return follow_up.id


def insert_put_then_fail(token: str, value: str) -> None:
    """Writes, puts a follow-up job, then fails: neither may survive."""
    _insert(jobq.local.connection(), value)
    follow_up = jobq.local.queue().put(jobq.Job(double, 1))
    record_call(token, follow_up.call_repr)
    raise RuntimeError("after the put")


def insert_then_sleep(value: str, seconds: float) -> str:
    """Holds its job's connection (and transaction) while it sleeps."""
    _insert(jobq.local.connection(), value)
    time.sleep(seconds)
    return value


# -- high availability (tests/integration/test_high_availability.py) ---------------------------
def open_gate(token: str) -> None:
    """Let every `gated` / `gated_insert` run for `token` finish."""
    with _STATE_LOCK:
        gate = GATES.setdefault(token, _threading.Event())
    gate.set()


def gated_insert(token: str, value: str) -> str:
    """Waits for its gate, then writes a row through its job's own transaction."""
    gated(token)
    _insert(jobq.local.connection(), value)
    return value


class InterruptLater(jobq.RetryPolicy):
    """Answers an interruption with "in an hour"."""

    def interrupted(self) -> Any:
        return _dt.timedelta(hours=1)


def insert_when_file_exists(path: str, value: str) -> str:
    """Blocks (up to 60 s) until `path` exists, then writes a row in its job's transaction."""
    import os as _os
    import time as _time

    deadline = _time.monotonic() + 60
    while not _os.path.exists(path):
        if _time.monotonic() > deadline:
            raise RuntimeError(f"{path} never appeared")
        _time.sleep(0.02)
    _insert(jobq.local.connection(), value)
    return value


def add_one_one() -> int:
    return 2


def fail_holding_a_secret(label: str) -> None:
    """Fails with a secret and an ordinary local in its frame: what a traceback must not leak."""
    secret_token = "hunter2"  # noqa: F841 - in the frame's locals only
    order_number = 4711  # noqa: F841 - shown when the worker records locals
    raise RuntimeError(f"{label} failed")


class PolicyWithoutArguments(jobq.RetryPolicy):
    """A custom policy whose `__init__` does not take what jobq passes (issue 17.1)."""

    def __init__(self) -> None:
        super().__init__()


class PolicyThatRaises(jobq.RetryPolicy):
    """A custom policy that cannot be built at all."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("this policy cannot be built")


def gated_connection(token: str, value: Any = None) -> Any:
    """Waits for its gate (see `gated`), then opens the job's own connection."""
    gated(token)
    jobq.local.connection().execute("SELECT 1")
    return value


def flaky(path: str, failures: int, value: Any) -> Any:
    """Raises ValueError on its first `failures` calls, then returns `value`; each call adds a
    line to the file `path`, so the calls are counted across worker processes."""
    with open(path, "a") as calls_file:
        calls_file.write("call\n")
    with open(path) as calls_file:
        n = len(calls_file.readlines())
    if n <= failures:
        raise ValueError(f"flaky call {n} of {failures} failing")
    return value


class QuickBackoff(jobq.RetryWithBackoff):
    """`put(..., retries=N, retry_policy=QuickBackoff)`: a backoff from 0.5 s, for tests."""

    backoff_base = 0.5


class SlowBackoff(jobq.RetryWithBackoff):
    """A backoff from 60 s: a job retried with it stays pending long enough to be looked at."""

    backoff_base = 60.0


def statuses_after_me(count: int) -> list[str]:
    """The statuses of the `count` jobs put right after this one (the next ids), as this job
    sees them while it runs."""
    store = jobq.local.queue().db.store
    me = jobq.local.job().id
    assert me is not None
    return [getattr(store.get(me + k), "status", "missing") for k in range(1, count + 1)]


def mark_then_wait_for(directory: str, name: str, other: str, seconds: float) -> bool:
    """Creates `directory/name`, then waits up to `seconds` for `directory/other`: True if
    the other job ran at the same time as this one."""
    import pathlib
    import time

    folder = pathlib.Path(directory)
    (folder / name).touch()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (folder / other).exists():
            return True
        time.sleep(0.01)
    return False


def wait_for_file(path: str, seconds: float = 60.0) -> bool:
    """Waits up to `seconds` for `path` to exist: a long job the test ends when it likes."""
    import pathlib
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pathlib.Path(path).exists():
            return True
        time.sleep(0.01)
    return False


def sleep_ms(ms: float) -> None:
    import time

    time.sleep(ms / 1000)


def return_gated_inner(token: str) -> jobq.Job:
    """Returns a job that waits for `token`'s gate: its caller then waits on it, on no thread."""
    return jobq.Job(gated, token, "inner")


def own_id_plus(job: jobq.Job, n: int) -> int:
    """For `Job.bind`: receives its own job first."""
    return (job.id or 0) + n


async def async_own_id(job: jobq.Job) -> int | None:
    """For `Job.bind` of an `async def`."""
    return job.id


def put_keyed(queue_name: str, key: str, count: int) -> None:
    """Put `count` jobs with unique key `key` in `queue_name`, from inside this job (its
    attempt transaction)."""
    target = jobq.local.queue().db.queue(queue_name)
    for i in range(count):
        target.put(jobq.Job(identity, i), unique_key=key)


def put_with_priorities(priorities: list[int]) -> None:
    """Put jobs from inside this job (jobq.local), one per priority: in its transaction."""
    queue = jobq.local.queue()
    for priority in priorities:
        queue.put(jobq.Job(add, priority, 0), priority=priority)
