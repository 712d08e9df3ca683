"""What `SqlStore` needs from a database engine: the `Driver` protocol, and the `Executor`
that runs the engine's named queries.

The store's operations (`_queue`, `_claim`, `_outcomes`, `_dispatchers`, `_monitor`,
`_schema`) are written once, over this protocol; `sqlite.SqliteDriver` and
`postgres.PostgresDriver` implement it. A driver owns connections and transactions, the
engine's value conversions, and the few write paths where the engines differ for speed
(single and bulk inserts, group commit of results).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol, TypeVar

from jobq.store.base import AttemptConnection, NewJob, Waiter

Row = dict[str, Any]  # a row of a named query, by column name
T = TypeVar("T")


class Executor:
    """Runs named queries on one cursor (in whatever transaction the cursor is in)."""

    __slots__ = ("cursor", "queries")

    def __init__(self, queries: dict[str, str], cursor: Any) -> None:
        self.queries = queries
        self.cursor = cursor

    def all(self, query: str, /, **params: Any) -> list[Row]:
        """The rows as dicts, new for each call (the cursor's own: psycopg's `dict_row`; an
        engine whose cursor makes other rows converts them in an `Executor` of its own)."""
        self._execute(query, params)
        rows: list[Row] = self.cursor.fetchall()
        return rows

    def one(self, query: str, /, **params: Any) -> Row | None:
        self._execute(query, params)
        row: Row | None = self.cursor.fetchone()
        return row

    def run(self, query: str, /, **params: Any) -> int:
        """Run a write; the number of rows it changed."""
        self._execute(query, params)
        return int(self.cursor.rowcount)

    def _execute(self, query: str, params: dict[str, Any]) -> None:
        try:
            self.cursor.execute(self.queries[query], params)
        except OverflowError:  # sqlite3's: a Python int past 64 bits
            # Only the numbers: the other parameters may hold a job's payload.
            huge = {k: v for k, v in params.items() if isinstance(v, int) and abs(v) >= 2**63}
            raise ValueError(
                f"number out of range: {huge or sorted(params)} (ids, sizes and counts are at "
                f"most {MAX_ID})"
            ) from None

    def raw(self, sql: str) -> None:
        """Run SQL text that is not a named query (schema statements, savepoints)."""
        self.cursor.execute(sql)


MAX_ID = 2**63 - 1
"""The largest id either engine stores (a signed 64-bit integer)."""

# `write(driver, ex, params, now)`: a result's general path (`_outcomes.write_result`), which
# a driver runs in a transaction of its own for what it does not complete in its faster way.
ResultWrite = Callable[["Driver", Executor, Row, dt.datetime], None]


class Driver(Protocol):
    """One engine's connections, transactions, conversions and engine-specific writes."""

    engine: str  # "sqlite" or "postgres": names the sql/<engine>/ folder too
    queries: dict[str, str]  # the engine's named queries (`_schema.load_queries`)
    # Whether the server has a clock of its own that every machine's workers share
    # (PostgreSQL): dispatcher liveness asked "at the database's time" (now=None) uses it.
    has_server_clock: bool

    # -- transactions --------------------------------------------------------------------------
    def transaction(self, conn: object = None) -> contextlib.AbstractContextManager[Executor]:
        """A write transaction, committed when the block ends (rolled back if it raises);
        with `conn`, the caller's own connection and open transaction instead, committing
        nothing."""
        ...

    def read(self) -> contextlib.AbstractContextManager[Executor]:
        """For reads only: sees what was committed before it began."""
        ...

    def statement(self) -> contextlib.AbstractContextManager[Executor]:
        """For one write statement, atomic by itself: an engine that can commit it without a
        transaction block saves the BEGIN and COMMIT round trips."""
        ...

    def grouped(self, work: Callable[[Executor], T]) -> T:
        """`work(executor)`, a short write atomic by itself (a claim), committed before this
        returns; an engine may commit it together with other threads' writes."""
        ...

    def start_job(self, params: dict[str, Any]) -> bool:
        """The fenced start of a job claimed ahead (`start_job`'s parameters, `now` as the
        engine stores it), committed before this returns, with other threads' starts where
        the engine can; True if it started."""
        ...

    def notify(self, ex: Executor, queue: str) -> None:
        """Wake idle workers of `queue` once `ex`'s transaction commits (if the engine can)."""
        ...

    # -- conversions ---------------------------------------------------------------------------
    def to_db_time(self, value: dt.datetime) -> object:
        """An aware datetime as the engine stores it."""
        ...

    def from_db_time(self, value: Any) -> dt.datetime:
        """A stored time as an aware datetime (UTC)."""
        ...

    def to_db_list(self, values: Sequence[int | str]) -> object:
        """Ids or names as one parameter of the engine's queries (a JSON text or an array)."""
        ...

    # -- engine-specific writes ----------------------------------------------------------------
    def insert_job(self, ex: Executor, job: NewJob, status: str, now: dt.datetime) -> int:
        """Insert one job row with `status`, in `ex`'s transaction; its id."""
        ...

    def insert_jobs(
        self, ex: Executor, jobs: Sequence[NewJob], status: str, now: dt.datetime
    ) -> list[int]:
        """Insert rows in order, reading `jobs` once, in `ex`'s transaction; their ids in
        order (the engine batches the round trips)."""
        ...

    def put_one(self, job: NewJob, now: dt.datetime) -> int:
        """Insert one pending job, notify its queue and commit; its id."""
        ...

    def commit_result(self, params: Row, now: dt.datetime, write: ResultWrite) -> None:
        """Store a result that comes without the job's own writes (`store_result` params) and
        commit it, possibly with other threads' completions, before returning; `write` is the
        general path, for whatever the engine does not complete its own way."""
        ...

    def commit_result_later(
        self,
        params: Row,
        now: dt.datetime,
        write: ResultWrite,
        then: Callable[[BaseException | None], None],
    ) -> None:
        """`commit_result` without waiting: `then(None)` once committed, or `then(error)`."""
        ...

    # -- the engine's own ----------------------------------------------------------------------
    def create_namespace(self) -> None:
        """Create what the tables live in before migrating, if the engine has one."""
        ...

    def migrate_lock(self, ex: Executor) -> None:
        """Serialize concurrent first connects while the schema is created."""
        ...

    def reserve_connections(self, count: int) -> None:
        """Make room for `count` concurrent connections (a worker's threads), if pooled."""
        ...

    def waiter(self, queues: Collection[str] | None = None) -> Waiter:
        """A waiter woken by new work in `queues` (any queue, if None), where the engine can
        tell queues apart (PostgreSQL's NOTIFY payload); otherwise by any."""
        ...

    def attempt_connection(self) -> AttemptConnection: ...
    def close(self) -> None: ...
