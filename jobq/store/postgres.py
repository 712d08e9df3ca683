"""PostgreSQL engine: many worker processes on many machines.

`PostgresDriver` implements `store.driver.Driver`; `PostgresStore` is `SqlStore` over it.

A psycopg 3 connection pool; claims pick rows `FOR UPDATE SKIP LOCKED` in a CTE and update
them in the same statement, so concurrent claimers never wait on or double-take a row.
Claims on a queue with quotas first take an advisory lock on the queue (until commit), then
count the slots held and take jobs: they take turns, so quotas hold across machines.
Writes that depend on another row (callbacks completing a parent, a job adopting an inner
job's result) lock that row first, always the inner job before the outer, so they cannot
deadlock. New work sends `NOTIFY jobq, '<queue>'` inside the transaction: idle workers
`LISTEN` and wake when it commits. `?schema=name` in the URL keeps jobq's tables in that
schema (created on first connect). Times are passed as aware datetimes, id lists as arrays.

Where it differs from SQLite for speed: connections are in autocommit, so a single-statement
write (a put with its NOTIFY, a claim) is one round trip; results that need nothing after
them are completed together, many per statement (`_complete_plain`, a group commit); a bulk
put is sent in pipelined parts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

from jobq._urls import masked_url
from jobq.errors import (
    ConfigError,
    ConflictError,
    OutcomeUnknown,
    StoreUnavailable,
    is_conflict,
    is_disconnect,
)
from jobq.store._external import driver_connection
from jobq.store._group import OUTCOME_LINGER, GroupCommit
from jobq.store._rows import insert_params, json_columns
from jobq.store._schema import load_queries
from jobq.store._sql import SqlStore
from jobq.store.base import NewJob
from jobq.store.driver import Executor, ResultWrite, T


def _wrap(error: Exception) -> Exception:
    if is_conflict(error):
        return ConflictError(f"PostgreSQL write conflict: {error}")
    if isinstance(error, PoolTimeout) or is_disconnect(error):
        return StoreUnavailable(f"PostgreSQL is unavailable: {error}")
    return error


def _in_doubt(error: Exception) -> Exception:
    """`error`, raised while a commit was in flight, as jobq's: a lost connection then is an
    `OutcomeUnknown` (the server may have committed), anything else as `_wrap` says."""
    if not isinstance(error, PoolTimeout) and is_disconnect(error):
        return OutcomeUnknown(
            f"PostgreSQL connection lost while a commit was in flight; the outcome is unknown "
            f"(it may or may not be stored): {error}"
        )
    return _wrap(error)


# Rows per statement of a bulk put: parts are pipelined, so that encoding one part overlaps
# the server's insert of the one before; smaller parts cost more round trips, larger ones
# overlap less (docs/benchmarks.md).
INSERT_PART = 500
# Connections of a process for the fenced starts of jobs claimed ahead, one per agent thread
# up to this many (threads beyond share them, their starts committed together): a start
# waiting for another thread's to commit first cost a drain about a sixth of its rate
# (docs/benchmarks.md).
START_LANES = 4

_LINK_DEFAULTS = {
    "application_name": "jobq",  # how operators find jobq's sessions in pg_stat_activity
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}


# The server's side of each jobq session (passed as `options`, before the URL's own, which
# win): no statement of jobq's waits long for a lock another session holds (a worker cut off
# inside a transaction keeps its row locks until the server notices); a transaction of jobq's
# left idle (its worker paused or cut off between an UPDATE and its COMMIT) is ended by the
# server; and the server probes an idle link, so a partitioned worker's session and its locks
# go within about 30 s. A job's own transaction (`jobq.local.connection()`) is exempt from the
# lock and idle limits, which would change what its SQL means (`PostgresAttemptConnection`).
SESSION_SETTINGS = {
    "lock_timeout": "10s",
    "idle_in_transaction_session_timeout": "60s",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}


def split_url(url: str) -> tuple[str, str | None, int, float]:
    """Return (conninfo URL without jobq's options, schema, pool size, pool timeout)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", None)
    try:
        pool_size = int(query.pop("pool_size", "10"))
    except ValueError as error:
        raise ConfigError(f"pool_size in {masked_url(url)!r} must be an integer") from error
    timeout_text = query.pop("pool_timeout", "30")
    try:
        pool_timeout = float(timeout_text)
    except ValueError:
        pool_timeout = -1.0
    if not 0 < pool_timeout < float("inf"):
        raise ConfigError(
            f"pool_timeout={timeout_text!r} in {masked_url(url)!r} must be a positive number of "
            f"seconds (how long a job waits for a connection before it counts as lost)"
        )
    if schema is not None and not schema.replace("_", "").isalnum():
        raise ConfigError(f"schema={schema!r} must be letters, digits and underscores")
    options = " ".join(f"-c {name}={value}" for name, value in SESSION_SETTINGS.items())
    options += f" {query.get('options', '')}".rstrip()  # the URL's own settings win
    if schema:
        options += f" -c search_path={schema}"
    query["options"] = options
    # A partitioned network must surface as an error, not as a call that hangs forever: TCP
    # keepalives and a send timeout make a dead link fail within about 30 s (user-overridable).
    for key, value in _LINK_DEFAULTS.items():
        query.setdefault(key, value)
    conninfo = urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))
    return conninfo, schema, pool_size, pool_timeout


class PostgresAttemptConnection:
    """A job attempt's own pooled connection; its transaction begins on first statement."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool
        try:
            self._conn = pool.getconn()
        except (psycopg.Error, PoolTimeout) as error:  # a hung or lost link: jobq's error
            raise _wrap(error) from error
        self._conn.autocommit = False  # the pool's connections are autocommit otherwise
        # The job's transaction is the job's: no jobq limit on how long it waits for a lock or
        # stays idle between its statements (SET LOCAL: until this transaction ends).
        self._conn.execute(
            "SET LOCAL lock_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0"
        )

    @property
    def raw(self) -> psycopg.Connection[Any]:
        return self._conn

    def commit(self) -> None:
        try:
            self._conn.commit()
        except psycopg.Error as error:  # sent or not: the reply is what was lost
            raise _in_doubt(error) from error

    def rollback(self) -> None:
        self._conn.rollback()

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._conn.rollback()
            self._conn.autocommit = True
        self._pool.putconn(self._conn)  # a broken connection is discarded by the pool

    def abort(self) -> None:
        # psycopg serializes a connection's statements with its lock: cancel the one the job
        # runs (so that the lock is released), roll back, and close while holding the lock
        # (no statement of the job is under way then); the pool discards the closed one.
        with contextlib.suppress(psycopg.Error):
            self._conn.cancel()
        with contextlib.suppress(psycopg.Error):
            self._conn.rollback()
        with self._conn.lock:
            self._conn.close()
        self._pool.putconn(self._conn)


def notify_channel(schema: str | None) -> str:
    """The NOTIFY channel of jobq's tables in `schema`: a NOTIFY reaches every session of the
    database, so workers of other schemas (other applications, tests) must not hear it."""
    return "jobq" if not schema else f"jobq_{schema}"[:63]


class ListenWaiter:
    """Wakes on a NOTIFY of its channel naming one of `queues` (any, if None), reconnecting
    (and reporting a wake-up) if the link drops."""

    def __init__(
        self, conninfo: str, channel: str = "jobq", queues: Collection[str] | None = None
    ) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._queues = None if queues is None else frozenset(queues)
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
            self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        return self._conn

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        try:
            conn = self._connect()
            while (left := deadline - time.monotonic()) > 0:
                for note in conn.notifies(timeout=left, stop_after=1):
                    if self._queues is None or note.payload in self._queues:
                        return True
            return False
        except psycopg.Error:
            self.close()
            time.sleep(min(timeout, 1.0))
            return True  # we may have missed notifications: poll

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None


def _json_row(job: NewJob, iso: dict[dt.datetime, str]) -> dict[str, Any]:
    """A job's row for the JSON parameter of `insert_jobs` (`call` in hex); `iso` caches the
    text of the begin_after times, which most jobs of a batch share."""
    retry_data, quota_names, rate_limits = json_columns(job)
    return {
        "queue": job.queue,
        "begin_after": iso.get(job.begin_after)
        or iso.setdefault(job.begin_after, job.begin_after.isoformat()),
        "begin_by": job.begin_by,
        "job_class": job.job_class,
        "call": job.call.hex(),
        "call_repr": job.call_repr,
        "retry_policy": job.retry_policy,
        "retry_data": retry_data,
        "failure_log_level": job.failure_log_level,
        "quota_names": quota_names,
        "put_by": job.put_by,
        "parent_id": job.parent_id,
        "priority": job.priority,
        "keep_result": job.keep_result,
        "rate_limits": rate_limits,
    }


class _StartLane:
    """The fenced starts of the threads given this lane, committed together on a connection of
    its own: one statement per flush. A lane per thread, up to START_LANES, so that a start
    does not wait for another thread's start to commit before its own can go."""

    def __init__(self, driver: PostgresDriver) -> None:
        self._driver = driver
        self._cursor: psycopg.Cursor[Any] | None = None  # kept, on the lane's connection
        self.starts: GroupCommit[dict[str, Any], bool] = GroupCommit(self._start_batch)

    def close(self) -> None:
        if self._cursor is not None:
            with contextlib.suppress(psycopg.Error):
                self._cursor.connection.close()

    def _start_batch(self, batch: list[dict[str, Any]]) -> list[bool | BaseException]:
        """The `GroupCommit` flush: start the batch's jobs in one statement (a start alone:
        `start_job`, whose parameters need no encoding); True for each job started."""
        cursor = self._cursor
        if cursor is None or cursor.closed or cursor.connection.closed:
            cursor = psycopg.connect(self._driver.conninfo, autocommit=True).cursor()
            self._cursor = cursor
        queries = self._driver.queries
        try:
            if len(batch) == 1:
                cursor.execute(queries["start_job"], batch[0])
                return [cursor.rowcount == 1]
            rows = [{**p, "now": p["now"].isoformat()} for p in batch]
            cursor.execute(queries["start_jobs"], {"rows": json.dumps(rows)})
            started = {row[0] for row in cursor.fetchall()}
        except psycopg.Error as error:
            cursor.connection.close()
            raise _in_doubt(error) from error  # one autocommit statement: its own commit
        return [p["id"] in started for p in batch]


class PostgresDriver:
    """The `Driver` of a PostgreSQL database: a pool of autocommit connections."""

    engine = "postgres"
    has_server_clock = True  # clock_timestamp(): one clock for every machine's workers

    def __init__(self, url: str) -> None:
        self.url = url
        self.conninfo, self.schema, pool_size, pool_timeout = split_url(url)
        self.channel = notify_channel(self.schema)
        self.queries = load_queries("postgres")
        self._flush_conn: psycopg.Connection[Any] | None = None
        self.puts: GroupCommit[tuple[NewJob, dt.datetime], int] = GroupCommit(self._put_batch)
        self.completions: GroupCommit[dict[str, Any], bool] = GroupCommit(
            self._complete_plain, linger=OUTCOME_LINGER
        )
        # Starts of jobs claimed ahead, from the threads of this process: each thread starts
        # through one of START_LANES lanes, a group commit on a connection of its own.
        self._start_lanes = [_StartLane(self) for _ in range(START_LANES)]
        self._lane_of_thread = threading.local()
        self._lanes_given = itertools.count()
        self.pool: ConnectionPool[Any] = ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=max(2, pool_size),
            # Autocommit: a single-statement write (a put, a claim, a plain completion) is one
            # round trip; psycopg would otherwise send BEGIN and COMMIT as two more.
            # Multi-statement writes open a transaction explicitly (`transaction`).
            kwargs={"row_factory": dict_row, "autocommit": True},
            open=False,
            timeout=pool_timeout,
            name="jobq",
        )
        # One direct connection first: a refused connection or a bad role says so at once, in
        # the server's words, where the pool would retry for its timeout and say only that.
        try:
            psycopg.connect(self.conninfo, connect_timeout=10).close()
        except psycopg.Error as error:
            reason = str(error).strip() or type(error).__name__
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {masked_url(url)}: {reason}"
            ) from None
        try:
            self.pool.open(wait=True, timeout=10)
        except PoolTimeout as error:
            self.pool.close()
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {masked_url(url)}: {error}"
            ) from error

    # -- connections and transactions ----------------------------------------------------------
    def transaction(self, conn: object = None) -> contextlib.AbstractContextManager[Executor]:
        if conn is not None:
            return self._joined(conn)
        return self._pooled(transaction=True)

    def read(self) -> contextlib.AbstractContextManager[Executor]:
        return self.statement()  # autocommit: each read sees the latest commits

    def statement(self) -> contextlib.AbstractContextManager[Executor]:
        return self._pooled(transaction=False)

    def grouped(self, work: Callable[[Executor], T]) -> T:
        """`work` as one autocommit statement: its own commit, in the same round trip."""
        with self.statement() as ex:
            return work(ex)

    @contextlib.contextmanager
    def _joined(self, conn: object) -> Iterator[Executor]:
        """In the caller's own connection and transaction (it commits)."""
        raw = driver_connection(conn, psycopg.Connection, "PostgreSQL (psycopg 3)")
        with raw.cursor(row_factory=dict_row) as cursor:
            yield Executor(self.queries, cursor)

    @contextlib.contextmanager
    def _pooled(self, *, transaction: bool, commits: bool = False) -> Iterator[Executor]:
        """A cursor on a connection of the pool, in a transaction or (autocommit) not, with
        psycopg's errors raised as jobq's. getconn/putconn in one generator rather than
        `pool.connection()`, whose `with conn` ends in a commit call (a wait on the connection
        even in autocommit, where there is nothing to commit), and one more context manager
        (docs/benchmarks.md has the instructions saved).

        A connection lost once the COMMIT is sent (or, with `commits`, during an autocommit
        statement, which is its own commit) raises `OutcomeUnknown`: the server may have
        committed. Lost before, it is a plain `StoreUnavailable`: nothing was written."""
        try:
            db = self.pool.getconn()
        except (psycopg.Error, PoolTimeout) as error:
            raise _wrap(error) from error
        in_flight = commits
        try:
            if transaction:
                with db.transaction(), db.cursor() as cursor:
                    yield Executor(self.queries, cursor)
                    in_flight = True  # the body is done: leaving the block sends COMMIT
            else:
                with db.cursor() as cursor:
                    yield Executor(self.queries, cursor)
        except psycopg.Error as error:
            raise (_in_doubt(error) if in_flight else _wrap(error)) from error
        finally:
            self.pool.putconn(db)  # one left broken or in a transaction is reset or dropped

    def start_job(self, params: dict[str, Any]) -> bool:
        lane: _StartLane | None = getattr(self._lane_of_thread, "lane", None)
        if lane is None:
            lane = self._start_lanes[next(self._lanes_given) % START_LANES]
            self._lane_of_thread.lane = lane
        return lane.starts.run(params)

    def notify(self, ex: Executor, queue: str) -> None:
        ex.run("notify", queue=queue, channel=self.channel)

    # -- conversions ---------------------------------------------------------------------------
    def to_db_time(self, value: dt.datetime) -> dt.datetime:
        return value  # psycopg adapts aware datetimes to timestamptz

    def from_db_time(self, value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.UTC)

    def to_db_list(self, values: Sequence[int | str]) -> list[int | str]:
        return list(values)

    # -- writes --------------------------------------------------------------------------------
    def insert_job(self, ex: Executor, job: NewJob, status: str, now: dt.datetime) -> int:
        row = ex.one("insert_job", **insert_params(self, job, status, now))
        assert row is not None
        return int(row["id"])

    def put_one(self, job: NewJob, now: dt.datetime) -> int:
        # Puts of this process's threads at the same moment share one commit (`_put_batch`).
        return self.puts.run((job, now), gather=True)

    def _put_alone(self, job: NewJob, now: dt.datetime) -> int:
        """A put by itself: the insert and its NOTIFY are one statement, committed on its own."""
        with self._pooled(transaction=False, commits=True) as ex:
            row = ex.one(
                "insert_and_notify",
                **insert_params(self, job, "pending", now),
                channel=self.channel,
            )
        assert row is not None
        return int(row["id"])

    def _put_batch(self, batch: list[tuple[NewJob, dt.datetime]]) -> list[int | BaseException]:
        """The `GroupCommit` flush of single puts: their inserts and NOTIFYs in one statement
        (the rows as one JSON parameter), one commit for all. If it fails on a put's own error
        (a value a column refuses, say), each put is tried alone, so that one bad put fails no
        other; a lost link fails them all (in doubt, as the statement is its own commit)."""
        if len(batch) == 1:
            return [self._put_alone_or_error(*batch[0])]
        try:
            iso: dict[dt.datetime, str] = {}
            rows = [{**_json_row(job, iso), "now": now.isoformat()} for job, now in batch]
            with self._pooled(transaction=False, commits=True) as ex:
                ex.cursor.execute(
                    self.queries["insert_puts_and_notify"],
                    {"rows": json.dumps(rows), "channel": self.channel},
                )
                done = ex.cursor.fetchall()
        except (OutcomeUnknown, StoreUnavailable) as error:
            return [error] * len(batch)
        except Exception:  # the statement failed whole, nothing stored: one put at a time
            return [self._put_alone_or_error(job, now) for job, now in batch]
        if len(done) != len(batch):
            raise RuntimeError(f"{len(batch)} puts returned {len(done)} ids")
        return sorted(row["id"] for row in done)  # they ascend in the rows' order (insert_jobs)

    def _put_alone_or_error(self, job: NewJob, now: dt.datetime) -> int | BaseException:
        try:
            return self._put_alone(job, now)
        except Exception as error:
            return error

    def commit_result(self, params: dict[str, Any], now: dt.datetime, write: ResultWrite) -> None:
        # Most jobs have nothing to do after their result: the threads of this process
        # complete those together, in one autocommit statement (a group commit); the others
        # (and a lost claim) then take the transactional path.
        if not self.completions.run(params):
            with self.transaction() as ex:
                write(self, ex, params, now)

    def commit_result_later(
        self,
        params: dict[str, Any],
        now: dt.datetime,
        write: ResultWrite,
        then: Callable[[BaseException | None], None],
    ) -> None:
        def after_flush(plain: bool | BaseException) -> None:
            try:
                if isinstance(plain, BaseException):
                    raise plain
                if not plain:
                    with self.transaction() as ex:
                        write(self, ex, params, now)
            except Exception as error:
                then(error)
            else:
                then(None)

        self.completions.submit_then(params, after_flush)

    def _complete_plain(self, batch: list[dict[str, Any]]) -> list[bool | BaseException]:
        """The `GroupCommit` flush of results: complete, in one statement, the jobs of the
        batch that need nothing after their result; True for each job completed."""
        rows = [
            {
                **p,
                "result": None if p["result"] is None else p["result"].hex(),
                "now": p["now"].isoformat(),
            }
            for p in batch
        ]
        # One flush at a time (GroupCommit): it keeps a connection of its own.
        conn = self._flush_conn
        if conn is None or conn.closed:
            conn = self._flush_conn = psycopg.connect(self.conninfo, autocommit=True)
        try:
            with conn.cursor(row_factory=dict_row) as cursor:
                done = Executor(self.queries, cursor).all(
                    "store_results_plain",
                    rows=json.dumps(rows),
                    dispatchers=sorted({p["dispatcher"] for p in batch}),
                )
            completed = {row["id"] for row in done}
        except psycopg.Error as error:
            conn.close()
            raise _in_doubt(error) from error  # one autocommit statement: its own commit
        return [p["id"] in completed for p in batch]

    def insert_jobs(
        self, ex: Executor, jobs: Sequence[NewJob], status: str, now: dt.datetime
    ) -> list[int]:
        if len(jobs) < 2:
            return [self.insert_job(ex, job, status, now) for job in jobs]
        # One statement per part of INSERT_PART rows, each part's rows in one JSON parameter
        # (psycopg adapts one string far faster than a parameter per column and row). The
        # parts are pipelined: the server inserts one part while the next is encoded (here,
        # and by the caller's lazy `jobs`), instead of each side waiting for the other.
        conn = ex.cursor.connection
        statement = self.queries["insert_jobs"]
        iso: dict[dt.datetime, str] = {}  # most jobs of a batch share their begin_after
        remaining = iter(jobs)
        sent: list[psycopg.Cursor[tuple[Any, ...]]] = []
        with conn.pipeline():
            while part := list(itertools.islice(remaining, INSERT_PART)):
                rows = [_json_row(job, iso) for job in part]
                cursor = conn.cursor(row_factory=tuple_row)
                cursor.execute(statement, {"rows": json.dumps(rows), "status": status, "now": now})
                sent.append(cursor)
        # Each part's ids ascend in its rows' order (see insert_jobs), parts in sending order.
        ids = [i for cursor in sent for i in sorted(row[0] for row in cursor.fetchall())]
        if len(ids) != len(jobs):
            raise RuntimeError(f"a batch insert of {len(jobs)} jobs returned {len(ids)} ids")
        return ids

    # -- the engine's own ----------------------------------------------------------------------
    def create_namespace(self) -> None:
        """The URL's `?schema=`, if it names one."""
        if self.schema:
            with self.transaction() as ex:
                ex.cursor.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )

    def migrate_lock(self, ex: Executor) -> None:
        ex.run("migrate_lock")

    def reserve_connections(self, count: int) -> None:
        # Each agent thread may hold a connection for its job's transaction while the
        # dispatcher claims with another: grow the pool rather than starve them.
        if count > self.pool.max_size:
            self.pool.resize(self.pool.min_size, count)

    def waiter(self, queues: Collection[str] | None = None) -> ListenWaiter:
        return ListenWaiter(self.conninfo, self.channel, queues)

    def attempt_connection(self) -> PostgresAttemptConnection:
        return PostgresAttemptConnection(self.pool)

    def close(self) -> None:
        self.completions.close()  # completions submitted and not yet committed
        for lane in self._start_lanes:
            lane.close()
        if self._flush_conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._flush_conn.close()
        self.pool.close()


class PostgresStore(SqlStore):
    """The Store protocol on a PostgreSQL database (`SqlStore` over a `PostgresDriver`)."""

    driver: PostgresDriver

    def __init__(self, url: str) -> None:
        super().__init__(PostgresDriver(url))
        self.url = url
        self.schema = self.driver.schema
