"""The operations of `store.base.Store`, written once over the engines' named queries.

Each engine (`sqlite.py`, `postgres.py`) supplies its queries file, its connections and
transactions, and its value conversions; the job life-cycle logic (fencing, releasing
callbacks, adopting an inner job's result, completing parents) lives here only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, TypeVar

from jobq.errors import JobNotFound, SchemaMismatch
from jobq.store._dispatchers import DispatchersMixin
from jobq.store._monitor import MonitorMixin
from jobq.store._outcomes import OutcomesMixin
from jobq.store.base import (
    JobRecord,
    NewJob,
)

SCHEMA_VERSION = 4  # the highest numbered file in sql/<engine>/migrations/


def load_queries(engine: str) -> dict[str, str]:
    """Read `sql/<engine>/queries.sql` and `monitor.sql` into {name: sql}, split on `-- name:`
    headers. A block named `_x` is a fragment, pasted where a query says `/*_x*/`."""
    folder = resources.files("jobq.store").joinpath(f"sql/{engine}")
    text = "\n".join(folder.joinpath(f).read_text() for f in ("queries.sql", "monitor.sql"))
    queries: dict[str, str] = {}
    name = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("-- name:"):
            if name:
                queries[name] = "\n".join(lines).strip()
            name, lines = line.split(":", 1)[1].strip(), []
        elif name and not line.startswith("--"):
            lines.append(line)
    if name:
        queries[name] = "\n".join(lines).strip()
    fragments = {k: v.rstrip(";") for k, v in queries.items() if k.startswith("_")}
    for key, fragment in fragments.items():
        queries = {k: v.replace(f"/*{key}*/", fragment) for k, v in queries.items()}
    return {k: v.rstrip(";") for k, v in queries.items() if not k.startswith("_")}


def _statements(text: str) -> list[str]:
    body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def load_schema(engine: str) -> list[str]:
    """The statements of `sql/<engine>/schema.sql`: the whole current schema, for a fresh
    database."""
    return _statements(
        resources.files("jobq.store").joinpath(f"sql/{engine}/schema.sql").read_text()
    )


def load_migrations(engine: str) -> list[tuple[int, list[str]]]:
    """`sql/<engine>/migrations/NNNN_description.sql`, as (NNNN, statements), in order.
    Migration N takes a database from schema version N - 1 to N (0001 is the initial schema);
    a released migration is never edited."""
    folder = resources.files("jobq.store").joinpath(f"sql/{engine}/migrations")
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), _statements(entry.read_text())))
    found.sort()
    return found


T = TypeVar("T")


def _json_dict(text: str) -> dict[str, Any]:
    """A stored JSON object; most are empty, and a claim reads several per job."""
    return {} if text == "{}" else json.loads(text)  # type: ignore[no-any-return]


class Executor:
    """Runs named queries on one cursor, converting parameters and rows for its engine."""

    def __init__(self, store: SqlStore, cursor: Any) -> None:
        self.store = store
        self.cursor = cursor

    def _execute(self, query: str, params: dict[str, Any]) -> Any:
        return self.cursor.execute(self.store.queries[query], params)

    def all(self, query: str, /, **params: Any) -> list[dict[str, Any]]:
        self._execute(query, params)
        return [dict(r) for r in self.cursor.fetchall()]

    def one(self, query: str, /, **params: Any) -> dict[str, Any] | None:
        self._execute(query, params)
        row = self.cursor.fetchone()
        return None if row is None else dict(row)

    def run(self, query: str, /, **params: Any) -> int:
        self._execute(query, params)
        return int(self.cursor.rowcount)

    def raw(self, sql: str) -> None:
        self.cursor.execute(sql)


class SqlStore(OutcomesMixin, DispatchersMixin, MonitorMixin):
    """Engine-independent implementation of the Store protocol."""

    engine = "sql"
    queries: dict[str, str]

    def __init__(self) -> None:
        self._quota_queues: set[str] = set()  # queues known to have quotas: the quota path

    # -- supplied by each engine -------------------------------------------------------------
    def _transaction(self, conn: Any = None) -> contextlib.AbstractContextManager[Executor]:
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Executor]:
        return self._transaction()

    def _statement(self) -> contextlib.AbstractContextManager[Executor]:
        """For one write statement, atomic by itself: engines that can commit it without a
        transaction block (PostgreSQL in autocommit) save the BEGIN and COMMIT round trips."""
        return self._transaction()

    def _in_statement(self, work: Callable[[Executor], T]) -> T:
        """`work(executor)`, a short write atomic by itself (a claim); engines may commit it
        together with other threads' writes (SQLite's group commit)."""
        with self._statement() as ex:
            return work(ex)

    def ts(self, value: dt.datetime | None) -> Any:
        return value

    def dt(self, value: Any) -> dt.datetime | None:
        return value

    def ids(self, values: Sequence[int]) -> Any:
        return list(values)

    def reserve_connections(self, count: int) -> None:
        """Engines without a pool need nothing (SQLite opens one connection per thread)."""

    def _notify(self, ex: Executor, queue: str) -> None:
        """Wake idle workers of `queue` once the transaction commits (if the engine can)."""

    def _migrate_lock(self, ex: Executor) -> None:
        """Serialize concurrent first connects while the schema is created."""

    # -- schema ------------------------------------------------------------------------------
    def migrate(self) -> None:
        """Create the schema (a fresh database: `schema.sql`, at SCHEMA_VERSION), or bring an
        older one up to date by applying the numbered migrations above its version, in order,
        in one transaction."""
        with self._transaction() as ex:
            self._migrate_lock(ex)
            statements = load_schema(self.engine)
            ex.raw(statements[0])  # jobq_schema itself, so that its version can be read
            row = ex.one("schema_version")
            if row is None:
                for statement in statements[1:]:
                    ex.raw(statement)
                ex.run("set_schema_version", version=SCHEMA_VERSION)
                return
            version = int(row["version"])
            if version > SCHEMA_VERSION:
                raise SchemaMismatch(
                    f"database schema version {version} is newer than this jobq "
                    f"understands ({SCHEMA_VERSION}); upgrade jobq"
                )
            if version == SCHEMA_VERSION:
                return
            for number, migration in load_migrations(self.engine):
                if version < number <= SCHEMA_VERSION:
                    for statement in migration:
                        ex.raw(statement)
            ex.run("update_schema_version", version=SCHEMA_VERSION)

    # -- rows --------------------------------------------------------------------------------
    def _record(self, row: dict[str, Any]) -> JobRecord:
        d = self.dt
        return JobRecord(
            id=row["id"],
            queue=row["queue"],
            status=row["status"],
            lane=row["lane"],
            begin_after=d(row["begin_after"]),  # type: ignore[arg-type]
            begin_by=row["begin_by"],
            job_class=row["job_class"],
            call=bytes(row["call"]),
            call_repr=row["call_repr"],
            retry_policy=row["retry_policy"],
            retry_data=_json_dict(row["retry_data"]),
            failure_log_level=row["failure_log_level"],
            quota_names=() if row["quota_names"] == "[]" else tuple(json.loads(row["quota_names"])),
            annotations=_json_dict(row["annotations"]),
            attempt=row["attempt"],
            dispatcher_uuid=row["dispatcher_uuid"],
            agent_name=row["agent_name"],
            put_by=row["put_by"],
            parent_id=row["parent_id"],
            waiting_on=row["waiting_on"],
            result_repr=row["result_repr"],
            failed=bool(row["failed"]),
            failure=None if row["failure"] is None else json.loads(row["failure"]),
            created=d(row["created"]),  # type: ignore[arg-type]
            assigned_at=d(row["assigned_at"]),
            active_start=d(row["active_start"]),
            active_end=d(row["active_end"]),
            completed_at=d(row["completed_at"]),
        )

    # -- enqueueing and the queue --------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob], now: dt.datetime, *, conn: Any = None) -> list[int]:
        with self._transaction(conn) as ex:
            ids = self._insert_many(ex, jobs, "pending", now)
            for queue in {job.queue for job in jobs}:
                self._notify(ex, queue)
        return ids

    def _insert_many(
        self, ex: Executor, jobs: Sequence[NewJob], status: str, now: dt.datetime
    ) -> list[int]:
        """Insert rows in order and return their ids (engines may batch the round trips)."""
        return [self._insert(ex, job, status, now) for job in jobs]

    def _insert_params(self, job: NewJob, status: str, now: dt.datetime) -> dict[str, Any]:
        return dict(
            queue=job.queue,
            status=status,
            sort_at=self.ts(max(job.begin_after, now)),
            begin_after=self.ts(job.begin_after),
            begin_by=job.begin_by,
            job_class=job.job_class,
            call=job.call,
            call_repr=job.call_repr,
            retry_policy=job.retry_policy,
            failure_log_level=job.failure_log_level,
            quota_names=json.dumps(list(job.quota_names)) if job.quota_names else "[]",
            put_by=job.put_by,
            parent_id=job.parent_id,
            now=self.ts(now),
        )

    def _insert(self, ex: Executor, job: NewJob, status: str, now: dt.datetime) -> int:
        row = ex.one("insert_job", **self._insert_params(job, status, now))
        assert row is not None
        return int(row["id"])

    def requeue(
        self,
        job_id: int,
        queue: str,
        begin_after: dt.datetime,
        begin_by: float | None,
        put_by: str | None,
        now: dt.datetime,
        *,
        conn: Any = None,
        quota_names: Sequence[str] | None = None,
    ) -> bool:
        with self._transaction(conn) as ex:
            n = ex.run(
                "requeue",
                id=job_id,
                queue=queue,
                sort_at=self.ts(max(begin_after, now)),
                begin_after=self.ts(begin_after),
                begin_by=begin_by,
                put_by=put_by,
                quota_names=None if quota_names is None else json.dumps(list(quota_names)),
            )
            if n:
                self._notify(ex, queue)
            return n == 1

    def get(self, job_id: int) -> JobRecord | None:
        with self._read() as ex:
            row = ex.one("get_job", id=job_id)
        return None if row is None else self._record(row)

    def get_result(self, job_id: int) -> bytes | None:
        with self._read() as ex:
            row = ex.one("get_result", id=job_id)
        if row is None:
            raise JobNotFound(f"no job with id {job_id}")
        return None if row["result"] is None else bytes(row["result"])

    def pending(self, queue: str, offset: int, limit: int) -> list[JobRecord]:
        with self._read() as ex:
            rows = ex.all("pending_jobs", queue=queue, offset=offset, limit=limit)
        return [self._record(r) for r in rows]

    def count_pending(self, queue: str) -> int:
        with self._read() as ex:
            row = ex.one("count_pending", queue=queue)
        return int(row["n"]) if row else 0

    def pull(self, queue: str, index: int) -> JobRecord | None:
        for _ in range(5):  # a concurrent claim may take the job between the two statements
            with self._transaction() as ex:
                if index >= 0:
                    rows = ex.all("pending_jobs", queue=queue, offset=index, limit=1)
                else:
                    rows = ex.all("pending_jobs_reversed", queue=queue, offset=-index - 1)
                if not rows:
                    return None
                job_id = rows[0]["id"]
                if ex.run("unqueue", id=job_id, queue=queue):
                    row = ex.one("get_job", id=job_id)
                    assert row is not None
                    return self._record(row)
        return None

    def remove(self, queue: str, job_id: int) -> bool:
        with self._transaction() as ex:
            return ex.run("unqueue", id=job_id, queue=queue) == 1

    def put_back(self, queue: str, job_id: int, now: dt.datetime) -> bool:
        with self._transaction() as ex:
            n = ex.run("put_back", id=job_id, queue=queue, now=self.ts(now))
            if n:
                self._notify(ex, queue)
            return n == 1

    # -- a job's life --------------------------------------------------------------------------
    def claim(
        self,
        queue: str,
        dispatcher: str,
        agent: str,
        limit: int,
        now: dt.datetime,
        accept: Callable[[JobRecord], bool] | None = None,
        *,
        active_only: bool = False,
        start: bool = False,
    ) -> list[JobRecord]:
        if limit <= 0:
            return []
        params = {
            "queue": queue,
            "dispatcher": dispatcher,
            "agent": agent,
            "now": self.ts(now),
            "start": start,
        }
        # Queues found to have quotas go straight to the quota path, which is correct with or
        # without quotas (it forgets the queue once it finds none).
        quota_queues = self._quota_queues
        rows: list[dict[str, Any]] = []
        if queue not in quota_queues and accept is None:
            # The common claim is one statement (its dispatcher check included). It takes
            # nothing from a queue with quotas: only an empty answer asks whether that was
            # why, so claims on queues without quotas do no more work.
            def claim_due(ex: Executor) -> tuple[list[dict[str, Any]], bool]:
                rows = ex.all("claim", limit=limit, active_only=active_only, **params)
                return rows, not rows and self._has_quotas(ex, queue)

            rows, found_quotas = self._in_statement(claim_due)
            if not found_quotas:
                return self._records_in_order(rows)
            quota_queues.add(queue)
        with self._transaction() as ex:
            if active_only:
                # A dispatcher presumed dead (deactivated by a sweep) claims nothing until its
                # next ping reactivates it: what it would take would only be handed on again.
                me = ex.one("get_dispatcher", uuid=dispatcher)
                if me is None or me["activated"] is None:
                    return []
            if queue not in quota_queues:
                # Filters are Python predicates: judge candidates, then claim the chosen ones
                # in the same transaction (PostgreSQL holds the candidates' locks).
                assert accept is not None  # the claim without a filter returned above
                window = max(100, limit * 10)
                candidates = ex.all("claim_candidates", limit=window, **params)
                chosen = [r["id"] for r in candidates if accept(self._record(r))][:limit]
                if chosen:
                    rows = ex.all("claim_ids", ids=self.ids(chosen), **params)
                # Like the claim, both queries take nothing from a queue with quotas.
                if not rows and self._has_quotas(ex, queue):
                    quota_queues.add(queue)
            if queue in quota_queues:
                rows, has_quotas = self._claim_with_quotas(ex, limit, now, params, accept)
                if not has_quotas:
                    quota_queues.discard(queue)
        return self._records_in_order(rows)

    def _records_in_order(self, rows: list[dict[str, Any]]) -> list[JobRecord]:
        """RETURNING order is unspecified: restore queue order (lane, sort_at, id), which is
        not begin_after order for pre-dated or put-back jobs."""
        rows.sort(key=lambda r: (r["lane"], r["sort_at"], r["id"]))
        return [self._record(r) for r in rows]

    def _has_quotas(self, ex: Executor, queue: str) -> bool:
        row = ex.one("queue_has_quotas", queue=queue)
        return bool(row and row["has"])

    def _claim_with_quotas(
        self,
        ex: Executor,
        limit: int,
        now: dt.datetime,
        params: dict[str, Any],
        accept: Callable[[JobRecord], bool] | None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """The claim of a queue with quotas, in the claim's transaction; returns the rows
        claimed and whether the queue has quotas (still).

        Lock the queue's quotas (PostgreSQL: an advisory lock per queue, so concurrent claimers
        take turns and each counts the slots the previous one took; SQLite: BEGIN IMMEDIATE
        already serializes), count the slots held (claimed and running jobs, and
        pending jobs put back "now", which keep theirs), then take due jobs in queue order,
        skipping those that name a full quota. A job holding its slots counts itself and may
        be taken even from a full quota; a job past its deadline is taken without consulting
        quotas (it is failed, not run). Names of quotas that no longer exist are ignored.
        """
        queue = params["queue"]
        ex.one("lock_queue_quotas", queue=queue)
        sizes = {r["name"]: int(r["size"]) for r in ex.all("queue_quotas", queue=queue)}
        held: dict[str, int] = dict.fromkeys(sizes, 0)
        for row in ex.all("quota_slots_held", queue=queue, now=params["now"]):
            if row["name"] in held:
                held[row["name"]] = int(row["held"])
        # A filter judges in Python: look at as many jobs as a filter claim does. Otherwise
        # jobs naming quotas full at the start are left out by the query, and a few more than
        # `limit` cover those that fill up during this claim (then another round).
        window = max(100, limit * 10) if accept is not None else limit + 10
        claimed: list[dict[str, Any]] = []
        for _ in range(5):
            full = sorted(name for name, size in sizes.items() if held[name] >= size)
            full_names: Sequence[Any] = full  # the engine's array parameter, as for ids
            candidates = ex.all(
                "claim_quota_candidates", full=self.ids(full_names), limit=window, **params
            )
            chosen: list[int] = []
            filled = False  # a quota filled up while choosing: jobs behind it were skipped
            for row in candidates:
                if len(claimed) + len(chosen) >= limit:
                    break
                names = set(json.loads(row["quota_names"])) & sizes.keys()
                counted = bool(row["holds_quota"]) or self._expired(row, now)
                if not counted and any(held[name] >= sizes[name] for name in names):
                    filled = True
                    continue
                if accept is not None and not accept(self._record(row)):
                    continue
                chosen.append(row["id"])
                if not counted:
                    for name in names:
                        held[name] += 1
            if chosen:
                claimed += ex.all("claim_ids", ids=self.ids(chosen), **params)
            # Another round only if the quotas that just filled up may hide claimable jobs.
            if len(claimed) >= limit or not filled or len(candidates) < window:
                break
        return claimed, bool(sizes)

    def _expired(self, row: dict[str, Any], now: dt.datetime) -> bool:
        if row["begin_by"] is None:
            return False
        begin_after = self.dt(row["begin_after"])
        assert begin_after is not None
        return begin_after + dt.timedelta(seconds=row["begin_by"]) < now

    def start(self, job_id: int, attempt: int, dispatcher: str, now: dt.datetime) -> bool:
        with self._transaction() as ex:
            return (
                ex.run(
                    "start_job", id=job_id, attempt=attempt, dispatcher=dispatcher, now=self.ts(now)
                )
                == 1
            )

    def owns(self, job_id: int, attempt: int, dispatcher: str) -> bool:
        with self._read() as ex:
            return (
                ex.one("check_owner", id=job_id, attempt=attempt, dispatcher=dispatcher) is not None
            )

    def set_annotation(self, job_id: int, name: str, value: Any, *, conn: Any = None) -> None:
        encoded = json.dumps(value)  # fail before touching the row
        with self._transaction(conn) as ex:
            row = ex.one("lock_job", id=job_id)
            if row is None:
                raise JobNotFound(f"no job with id {job_id}")
            current = ex.one("get_annotations", id=job_id)
            assert current is not None
            annotations = json.loads(current["annotations"])
            annotations[name] = json.loads(encoded)
            ex.run("set_annotation", id=job_id, annotations=json.dumps(annotations))

    def lock_annotations(self, job_id: int, *, conn: Any = None) -> dict[str, Any]:
        """Lock the job's row (until `conn`'s transaction ends) and return its annotations."""
        with self._transaction(conn) as ex:
            if ex.one("lock_job", id=job_id) is None:
                raise JobNotFound(f"no job with id {job_id}")
            row = ex.one("get_annotations", id=job_id)
            assert row is not None
            return dict(json.loads(row["annotations"]))

    def park(self, jobs: Sequence[NewJob], now: dt.datetime, *, conn: Any = None) -> list[int]:
        """Store jobs as "new": out of any queue until `requeue` puts them (composition)."""
        with self._transaction(conn) as ex:
            return self._insert_many(ex, jobs, "new", now)

    def statuses(self, job_ids: Sequence[int], *, conn: Any = None) -> dict[int, str]:
        """The status of each job that exists, read without locking (in `conn`'s transaction,
        so its own uncommitted writes count)."""
        found: dict[int, str] = {}
        with self._transaction(conn) as ex:
            for job_id in job_ids:
                row = ex.one("get_job", id=job_id)
                if row is not None:
                    found[job_id] = row["status"]
        return found

    # -- queues, dispatchers and agents ----------------------------------------------------------
