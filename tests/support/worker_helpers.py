"""Helpers shared by integration and acceptance tests: raw connections and waiting."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid as uuid_module
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

SUPPORT = os.path.dirname(os.path.abspath(__file__))
"""tests/support: the job functions and helpers tests and their worker processes import."""
PG_URL = os.environ.get("JOBQ_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def subprocess_env() -> dict[str, str]:
    """Environment for worker subprocesses: they import jobq and the job functions of
    tests/support (the repository's root for `docs/examples`), and write every thread's
    stack on SIGABRT (faulthandler), as `stop_workers` asks of one that does not stop."""
    root = os.path.dirname(os.path.dirname(SUPPORT))
    paths = [SUPPORT, root, os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "PYTHONFAULTHANDLER": "1",
    }


def spawn_worker(
    db_url: str, *options: str, uuid: str | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`python -m jobq worker --db DB_URL --uuid UUID OPTIONS...` (a new UUID unless given),
    importing the test job functions; its output appended to `log`, or discarded."""
    command = [
        sys.executable, "-m", "jobq", "worker", "--db", db_url,
        "--uuid", uuid or str(uuid_module.uuid4()), *options,
    ]  # fmt: skip
    if log is None:
        return subprocess.Popen(
            command, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, env=subprocess_env(), stdout=out, stderr=out)


def run_jobq(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m jobq ARGS...` as a user runs it (the test job functions importable): its
    exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "jobq", *args],
        capture_output=True,
        text=True,
        env=env or subprocess_env(),
        timeout=timeout,
    )


def jobq_output(*args: str) -> str:
    """`run_jobq`'s standard output, for a command that must succeed."""
    done = run_jobq(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def stop_workers(*processes: subprocess.Popen[bytes] | None) -> None:
    """Stop worker processes as an operator would (SIGTERM; a paused one is resumed first);
    one still running after 30 s is aborted, writing its threads' stacks to its output (see
    `subprocess_env`), then killed."""
    for process in processes:
        if process is None or process.poll() is not None:
            continue
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def abort_running_workers(wait: float = 5.0) -> list[int]:
    """Abort every `jobq worker` process started (directly or by a supervisor) from this
    process, so that each writes its threads' stacks to its output (`subprocess_env`), and
    wait up to `wait` seconds for them to end; their pids."""
    from jobq.bench.workloads import process_tree  # only on a failure: it imports rich

    found = []
    for pid in process_tree(os.getpid())[1:]:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        if b"jobq" in argv and b"worker" in argv:
            found.append(pid)
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGABRT)
    deadline = time.monotonic() + wait
    while any(map(_running, found)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _running(pid: int) -> bool:
    """`pid` has not ended (a zombie has: it waits only for its parent to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def pg_parts(db_url: str) -> tuple[str, str | None]:
    """(conninfo without jobq's ?schema=, schema) of a PostgreSQL test URL."""
    parts = urlsplit(db_url)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", None)
    return urlunsplit(parts._replace(query=urlencode(query))), schema


def sqlite_path(db_url: str) -> str:
    return urlsplit(db_url).path[1:]


def raw_connect(db_url: str) -> Any:
    """An application connection to the test database (sqlite3, or psycopg on the schema)."""
    if db_url.startswith("sqlite"):
        return sqlite3.connect(sqlite_path(db_url), timeout=30)
    conninfo, schema = pg_parts(db_url)
    options = f"-c search_path={schema}" if schema else ""
    return psycopg.connect(conninfo, options=options)


def sqlalchemy_url(db_url: str) -> tuple[str, dict[str, Any]]:
    """A SQLAlchemy URL and connect_args for the test database."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{sqlite_path(db_url)}", {}
    conninfo, schema = pg_parts(db_url)
    url = conninfo.replace("postgresql://", "postgresql+psycopg://", 1)
    return url, ({"options": f"-c search_path={schema}"} if schema else {})


def execute(db_url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on a fresh connection and commit; return the rows (if any)."""
    if not db_url.startswith("sqlite"):
        sql = sql.replace("?", "%s")
    conn = raw_connect(db_url)
    try:
        cursor = conn.execute(sql, params)
        rows = list(cursor.fetchall()) if cursor.description else []
        conn.commit()
        return rows
    finally:
        conn.close()


def create_app_table(db_url: str) -> None:
    serial = "INTEGER PRIMARY KEY" if db_url.startswith("sqlite") else "SERIAL PRIMARY KEY"
    execute(db_url, f"CREATE TABLE app_rows (id {serial}, value TEXT NOT NULL)")


def app_rows(db_url: str) -> list[str]:
    return [row[0] for row in execute(db_url, "SELECT value FROM app_rows ORDER BY id")]


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll `predicate` until it is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.02)


def failing_store_result(monkeypatch: Any, db: Any, error: Exception, times: int) -> list[int]:
    """Make the worker's next `times` commits of an outcome fail with `error` (its own
    transaction, or the group commit a plain job's outcome goes to); the ids it failed."""
    original = db.store.store_result
    raised: list[int] = []

    def store_result(job_id: int, *args: Any, **kwargs: Any) -> Any:
        if len(raised) < times:
            raised.append(job_id)
            raise error
        return original(job_id, *args, **kwargs)

    def store_result_later(job_id: int, *args: Any) -> None:
        if len(raised) < times:  # a completion committed in the background fails alike
            raised.append(job_id)
            then = args[-1]
            then(error)
            return
        original_later(job_id, *args)

    original_later = db.store.store_result_later
    monkeypatch.setattr(db.store, "store_result", store_result)
    monkeypatch.setattr(db.store, "store_result_later", store_result_later)
    return raised
