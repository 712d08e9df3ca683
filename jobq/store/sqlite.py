"""SQLite engine: the embedded default, shared by processes on one machine.

`SqliteDriver` implements `store.driver.Driver`; `SqliteStore` is `SqlStore` over it.

WAL mode; one connection per thread; every write is `BEGIN IMMEDIATE`, so writers take the
database lock up front and wait (busy timeout) instead of failing half-way. Claims are one
`UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING` (SQLite >= 3.35); on a queue with
quotas, a few statements in the same write transaction (which serializes them). There is no NOTIFY:
idle workers watch `PRAGMA data_version`, which changes whenever another connection commits,
a check that costs microseconds. Times are stored as integer microseconds (UTC), id lists
are passed as JSON text (read with `json_each`).

Where it differs from PostgreSQL for speed: claims, single puts and results of this
process's threads share one write transaction and one file sync (`_group.GroupCommit`, each
write in a savepoint), and a bulk put inserts many VALUES rows per statement.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, Generic

from jobq.errors import ConfigError, ConflictError, StoreFull, StoreUnavailable, is_conflict
from jobq.store._external import driver_connection
from jobq.store._group import OUTCOME_LINGER, GroupCommit, in_savepoints
from jobq.store._rows import json_columns
from jobq.store._schema import load_queries
from jobq.store._sql import SqlStore
from jobq.store._wake import SocketWaiter, WakeSender, wake_folder
from jobq.store.base import NewJob, Waiter
from jobq.store.driver import Executor, ResultWrite, Row, T

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)
_SYNC_MODES = {"off", "normal", "full", "extra"}
_SYNCING_MODES = {"full", "extra"}  # the modes that sync the file at each commit in WAL mode
# Rows per INSERT of a batch: one statement of many VALUES rows costs SQLite less per row
# than as many one-row statements (it opens the table's indexes and updates the id sequence
# once per statement; docs/benchmarks.md). 500 rows are 7,000 parameters, far under
# SQLite's limit.
INSERT_PART = 500


def _bind_none_and_bytes_as_they_are() -> None:
    """Register identity adapters for None and bytes with the sqlite3 module, unless some
    are registered already. Without one, binding either first looks for an `__adapt__` and
    a `__conform__` attribute, each raising and clearing an AttributeError: with a job row's
    many NULL columns that is about half the binding's work (docs/benchmarks.md). Both bind
    exactly as before (NULL, BLOB); the registry is the process's, so this also holds for
    the application's own sqlite3 connections, where it changes nothing but the speed."""
    for kind, same in ((type(None), {}.get), (bytes, bytes)):  # C callables: f(x) is x
        sqlite3.adapters.setdefault((kind, sqlite3.PrepareProtocol), same)


_bind_none_and_bytes_as_they_are()


def _disk_is_full(path: str | None) -> bool:
    """True if the disk that holds `path` has no room left (SQLite then says "disk I/O error"
    when it cannot even create its WAL files)."""
    try:
        return shutil.disk_usage(os.path.dirname(os.path.abspath(path or "."))).free < 65536
    except OSError:
        return False


def _wrap(error: sqlite3.Error, path: str | None = None) -> Exception:
    code = getattr(error, "sqlite_errorcode", None)
    io_error = code is not None and code & 0xFF == sqlite3.SQLITE_IOERR
    if code == sqlite3.SQLITE_FULL or (io_error and path is not None and _disk_is_full(path)):
        where = f"the disk that holds {path}" if path else "its disk"
        return StoreFull(
            f"the SQLite database cannot grow: {where} is full ({error}). Nothing was "
            f"written; free space there (SQLite's WAL needs room to checkpoint too)"
        )
    if is_conflict(error):
        return ConflictError(f"SQLite database is locked: {error}")
    if isinstance(error, sqlite3.OperationalError) and "unable to open" in str(error):
        return StoreUnavailable(f"cannot open SQLite database: {error}")
    return error


def _database_path(ex: Executor) -> str | None:
    """The file of the main database `ex` writes to, for an error message."""
    try:
        for row in ex.cursor.connection.execute("PRAGMA database_list"):
            if row[1] == "main":
                return str(row[2])
    except sqlite3.Error:
        pass
    return None


class _RowExecutor(Executor):
    """An `Executor` over a cursor making `sqlite3.Row`s, which it turns into dicts by
    position: `dict(row)` reads each column by its name, and each name is a scan of the
    row's columns (a job row's 35 columns took 10 times as long; docs/benchmarks.md)."""

    __slots__ = ()

    def all(self, query: str, /, **params: Any) -> list[Row]:
        self._execute(query, params)
        rows = self.cursor.fetchall()
        if not rows:
            return []
        names = rows[0].keys()
        return [dict(zip(names, r, strict=True)) for r in rows]

    def one(self, query: str, /, **params: Any) -> Row | None:
        self._execute(query, params)
        row = self.cursor.fetchone()
        return None if row is None else dict(zip(row.keys(), row, strict=True))


class _GroupWork(Generic[T]):
    """`work` for the group commit, raising jobq's errors instead of sqlite3's. A write that
    is not `durable` (a claim, a start) may commit without the file sync: a crash of the
    process cannot lose it (the operating system has it), only one of the machine could, and
    the job then goes back to its queue as it was, unstarted."""

    __slots__ = ("durable", "work")

    def __init__(self, work: Callable[[Executor], T], durable: bool = True) -> None:
        self.work = work
        self.durable = durable

    def __call__(self, ex: Executor) -> T:
        try:
            return self.work(ex)
        except sqlite3.Error as error:
            raise _wrap(error, _database_path(ex)) from error


class SqliteAttemptConnection:
    """A job attempt's own connection, in a write transaction begun on first use."""

    def __init__(self, driver: SqliteDriver) -> None:
        self._conn = driver.open()
        self._conn.execute("BEGIN IMMEDIATE")

    @property
    def raw(self) -> sqlite3.Connection:
        return self._conn

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self.rollback()
        self._conn.close()

    def abort(self) -> None:
        # sqlite3 connections are opened with check_same_thread=False, and SQLite serializes
        # the calls of two threads on one connection: interrupt what the job runs, then end.
        self._conn.interrupt()
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")
        self._conn.close()  # closing also rolls back a transaction the ROLLBACK missed


class DataVersionWaiter:
    """Wakes when another connection commits to the database file."""

    def __init__(self, driver: SqliteDriver, interval: float = 0.002) -> None:
        self._conn = driver.open()
        self._interval = interval
        self._version = self._read()

    def _read(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            version = self._read()
            if version != self._version:
                self._version = version
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self._interval, remaining))

    def close(self) -> None:
        self._conn.close()


# An open connection: the process that opened it, the thread it belongs to (None: shared by
# the process's threads), and the connection.
_OpenConnection = tuple[int, threading.Thread | None, sqlite3.Connection]


class SqliteDriver:
    """The `Driver` of a SQLite file: a connection per thread, and one writer at a time."""

    engine = "sqlite"
    has_server_clock = False  # one file on one machine: its workers share one clock

    def __init__(self, path: str, *, synchronous: str = "full", busy_timeout: float = 60.0) -> None:
        if synchronous.lower() not in _SYNC_MODES:
            raise ConfigError(
                f"synchronous={synchronous!r} is not a SQLite mode; "
                f"use one of {sorted(_SYNC_MODES)}"
            )
        self.path = path
        self.synchronous = synchronous.lower()
        self.busy_timeout = busy_timeout
        self.queries = load_queries("sqlite")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._writer = threading.Lock()  # one write transaction at a time in this process
        self._conns: list[_OpenConnection] = []
        self._unsynced: sqlite3.Connection | None = None  # see `_unsynced_connection`
        self.waker = WakeSender(wake_folder(path))
        self._insert_rows: dict[int, str] = {}  # _insert_rows_sql's texts, by row count
        self._row_parameters = self.queries["insert_job_row"].count("?")
        # Claims, completions and single puts of this process's threads share commits (syncs).
        self.group: GroupCommit[Callable[[Executor], Any], Any] = GroupCommit(
            in_savepoints(self.transaction), linger=OUTCOME_LINGER
        )

    # -- connections and transactions ----------------------------------------------------------
    def open(self, synchronous: str | None = None) -> sqlite3.Connection:
        """A new connection to the file, in WAL mode and autocommit (jobq says BEGIN), syncing
        as configured unless told another `synchronous` mode."""
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous or self.synchronous}")
        except sqlite3.Error as error:
            raise _wrap(error, self.path) from error
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use). Opening one closes those of threads
        that have ended, so that an application starting a thread per request holds as many
        connections (and files) as it has threads alive, not one for every thread it ran.
        A forked child never closes its parent's (closing one could checkpoint and remove the
        WAL the parent is writing): it leaves them open, unused."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.open()
            self._local.conn = conn
            pid = os.getpid()
            with self._lock:
                kept: list[_OpenConnection] = []
                ended: list[_OpenConnection] = []
                for entry in self._conns:
                    opener, owner, _ = entry
                    gone = opener == pid and owner is not None and not owner.is_alive()
                    (ended if gone else kept).append(entry)
                self._conns = [*kept, (pid, threading.current_thread(), conn)]
            for _, _, old in ended:
                with contextlib.suppress(sqlite3.Error):
                    old.close()
        return conn

    @contextlib.contextmanager
    def transaction(
        self, conn: object | None = None, *, durable: bool = True
    ) -> Iterator[Executor]:
        """A write transaction on this thread's connection (or, with `conn`, in the caller's).
        Not `durable`: committed without the file sync, where the configured mode would
        sync (`synchronous` may only change between transactions)."""
        if conn is not None:
            raw = driver_connection(conn, sqlite3.Connection, "sqlite3")
            cursor = raw.cursor()
            cursor.row_factory = sqlite3.Row
            yield _RowExecutor(self.queries, cursor)
            return
        unsynced = not durable and self.synchronous in _SYNCING_MODES
        # Threads of this process queue here, and the next one starts the moment the lock is
        # free, instead of polling in SQLite's busy handler (which sleeps in growing steps).
        # BEGIN IMMEDIATE, then COMMIT, or ROLLBACK if the body raised; sqlite3's errors
        # raised as jobq's. (One generator, not two nested: every write pays for it.)
        # The body's cursor says BEGIN and COMMIT too (a cursor fewer to make each way).
        with self._writer:
            db = self._unsynced_connection() if unsynced else self.connection()
            cursor = db.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as error:
                raise _wrap(error, self.path) from error
            try:
                yield _RowExecutor(self.queries, cursor)
            except sqlite3.Error as error:
                db.execute("ROLLBACK")
                raise _wrap(error, self.path) from error
            except BaseException:
                db.execute("ROLLBACK")
                raise
            try:
                cursor.execute("COMMIT")
            except sqlite3.Error as error:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise _wrap(error, self.path) from error

    def _unsynced_connection(self) -> sqlite3.Connection:
        """The connection of the transactions that commit without the file sync, opened at
        `synchronous=NORMAL` (with the writer lock held: the process's threads take turns on
        it), so that they need not switch the mode before and after each."""
        if self._unsynced is None:
            self._unsynced = self.open(synchronous="normal")
            with self._lock:
                self._conns.append((os.getpid(), None, self._unsynced))
        return self._unsynced

    @contextlib.contextmanager
    def read(self) -> Iterator[Executor]:
        try:
            yield _RowExecutor(self.queries, self.connection().cursor())
        except sqlite3.Error as error:
            raise _wrap(error) from error

    def statement(self) -> contextlib.AbstractContextManager[Executor]:
        return self.transaction()  # SQLite has no cheaper way to commit a single write

    def grouped(self, work: Callable[[Executor], T]) -> T:
        return self.group.run(_GroupWork(work, durable=False))  # claims

    def start_job(self, params: dict[str, Any]) -> bool:
        start = _GroupWork(lambda ex: ex.run("start_job", **params) == 1, durable=False)
        return self.group.run(start)

    def notify(self, ex: Executor, queue: str) -> None:
        """No NOTIFY: waiting workers are told to look (`_wake.py`), and see the commit that
        follows in `PRAGMA data_version`."""
        self.waker.send()

    # -- conversions ---------------------------------------------------------------------------
    def to_db_time(self, value: dt.datetime) -> int:
        return (value - _EPOCH) // _MICRO

    def from_db_time(self, value: int) -> dt.datetime:
        return _EPOCH + _MICRO * value  # a third of timedelta(microseconds=value)'s cost

    def to_db_list(self, values: Sequence[int | str]) -> str:
        return json.dumps(list(values))

    # -- writes --------------------------------------------------------------------------------
    def put_one(self, job: NewJob, now: dt.datetime) -> int:
        work = _GroupWork(lambda ex: self.insert_job(ex, job, "pending", now))
        job_id = self.group.run(work, gather=True)
        self.waker.send()
        return job_id

    def commit_result(self, params: dict[str, Any], now: dt.datetime, write: ResultWrite) -> None:
        self.group.run(_GroupWork(lambda ex: write(self, ex, params, now)))

    def commit_result_later(
        self,
        params: dict[str, Any],
        now: dt.datetime,
        write: ResultWrite,
        then: Callable[[BaseException | None], None],
    ) -> None:
        def after_flush(result: Any) -> None:
            then(result if isinstance(result, BaseException) else None)

        self.group.submit_then(_GroupWork(lambda ex: write(self, ex, params, now)), after_flush)

    def insert_job(self, ex: Executor, job: NewJob, status: str, now: dt.datetime) -> int:
        values = self._row_values(job, status, now, self.to_db_time(now))
        ex.cursor.execute(self.queries["insert_job_row"], values)
        return int(ex.cursor.lastrowid)

    def _row_values(self, job: NewJob, status: str, now: dt.datetime, at: int) -> tuple[Any, ...]:
        """insert_job_row's parameters, in its order, for a job put at `now` (`at` stored)."""
        # Most jobs begin when put: their begin_after is `now` itself, already converted.
        begin_after = at if job.begin_after is now else self.to_db_time(job.begin_after)
        retry_data, quota_names, rate_limits = json_columns(job)
        return (
            job.queue,
            status,
            max(begin_after, at),  # sort_at
            begin_after,
            job.begin_by,
            job.job_class,
            job.call,
            job.call_repr,
            job.retry_policy,
            retry_data,
            job.failure_log_level,
            quota_names,
            job.put_by,
            job.parent_id,
            at,
            job.priority,
            job.keep_result,
            rate_limits,
        )

    def insert_jobs(
        self, ex: Executor, jobs: Sequence[NewJob], status: str, now: dt.datetime
    ) -> list[int]:
        if len(jobs) < 2:
            return [self.insert_job(ex, job, status, now) for job in jobs]
        at = self.to_db_time(now)
        cursor = ex.cursor
        # A build of SQLite may allow fewer parameters per statement than INSERT_PART rows need.
        allowed = cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        rows_per_part = max(1, min(INSERT_PART, allowed // self._row_parameters))
        remaining = iter(jobs)
        while part := list(itertools.islice(remaining, rows_per_part)):
            values: list[Any] = []
            for job in part:
                values += self._row_values(job, status, now, at)
            cursor.execute(self._insert_rows_sql(len(part)), values)
        row = ex.one("last_insert_id")
        assert row is not None
        last = int(row["id"])
        first = last - len(jobs) + 1
        # One writer and AUTOINCREMENT make a batch's ids consecutive; check, never assume.
        check = ex.one("count_ids_between", first=first, last=last)
        if check is None or int(check["n"]) != len(jobs):
            raise RuntimeError(f"jobs {first}..{last} of a batch insert are not consecutive")
        return list(range(first, last + 1))

    def _insert_rows_sql(self, count: int) -> str:
        """insert_job_row for `count` rows: its VALUES tuple repeated, in one statement."""
        text = self._insert_rows.get(count)
        if text is None:
            head, _, row = self.queries["insert_job_row"].rstrip().rstrip(";").partition("VALUES")
            text = f"{head}VALUES {', '.join([row.strip()] * count)}"
            if len(self._insert_rows) < 64:  # the full part's text, and a few remainders
                self._insert_rows[count] = text
        return text

    # -- the engine's own ----------------------------------------------------------------------
    def create_namespace(self) -> None:
        """Nothing: the file is the database."""

    def migrate_lock(self, ex: Executor) -> None:
        """Nothing: BEGIN IMMEDIATE already serializes the migrating connections."""

    def reserve_connections(self, count: int) -> None:
        """Nothing: a connection per thread, opened on first use, no pool."""

    def waiter(self, queues: Collection[str] | None = None) -> Waiter:
        """A `SocketWaiter` (woken by writers, `_wake.py`), or where no socket can be made
        (a read-only folder), a `DataVersionWaiter` polling every 2 ms. Any queue's work
        wakes it: the file says only that it changed."""
        conn = self.open()
        try:
            return SocketWaiter(
                wake_folder(self.path),
                lambda: int(conn.execute("PRAGMA data_version").fetchone()[0]),
                conn.close,
            )
        except OSError:
            conn.close()
            return DataVersionWaiter(self)

    def attempt_connection(self) -> SqliteAttemptConnection:
        return SqliteAttemptConnection(self)

    def close(self) -> None:
        self.group.close()  # completions submitted and not yet committed
        self.waker.close()
        with self._lock:
            conns, self._conns = self._conns, []
            self._unsynced = None
        for _, _, conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()


class SqliteStore(SqlStore):
    """The Store protocol on a SQLite file (`SqlStore` over a `SqliteDriver`)."""

    driver: SqliteDriver

    def __init__(self, path: str, *, synchronous: str = "full", busy_timeout: float = 60.0) -> None:
        super().__init__(SqliteDriver(path, synchronous=synchronous, busy_timeout=busy_timeout))
        self.path = path
