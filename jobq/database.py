"""`connect()` and `Database`: the entry point, one per process and database.

A Database owns the engine's store, the clock and the codec (with the HMAC secret). It hands
out queues, loads jobs by id, and serves stored `Job` handles (refresh, result, callbacks).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import parse_qsl, urlsplit

from jobq._clock import Clock, SystemClock
from jobq.errors import BadStatusError, ConfigError, EncodingError, JobNotFound
from jobq.local import current_dispatcher_uuid
from jobq.model.codec import Codec, call_repr, encode_call
from jobq.model.failure import Failure, failure_dict
from jobq.model.job import Job, Status
from jobq.model.retry import RetryPolicy, policy_path
from jobq.queue import Queue
from jobq.store.base import AgentRecord, JobRecord, NewJob, Outcome, Store
from jobq.worker.compose import CompositionOps

if TYPE_CHECKING:
    from jobq.worker.dispatcher import AgentSpec, Dispatcher

events_log = logging.getLogger("jobq.events")

DEFAULT_SQLITE_PATH = "jobq.db"


class _Keep:
    """The default of `Database.set_agent(filter=...)`: keep the agent's filter."""

    def __repr__(self) -> str:
        return "KEEP"


_KEEP = _Keep()


def open_store(url: str | None) -> Store:
    """Build the engine's store for a URL: `sqlite:///path`, `postgresql://...`, or None
    (`./jobq.db`)."""
    if url is None:
        from jobq.store.sqlite import SqliteStore

        return SqliteStore(DEFAULT_SQLITE_PATH)
    if not isinstance(url, str):
        raise ConfigError(f"database URL must be a string, got {url!r}")
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from jobq.store.sqlite import SqliteStore

        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"{url!r}: a SQLite URL is sqlite:///relative/path or sqlite:////abs/path"
            )
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path or path == ":memory:":
            raise ConfigError(
                f"{url!r} names no file; jobq needs a SQLite file shared by all its connections "
                f"(for example sqlite:///jobq.db)"
            )
        options = dict(parse_qsl(parts.query))
        unknown = set(options) - {"synchronous"}
        if unknown:
            raise ConfigError(f"unknown SQLite URL option(s) {sorted(unknown)} in {url!r}")
        return SqliteStore(path, synchronous=options.get("synchronous", "full"))
    if scheme in ("postgresql", "postgres"):
        from jobq.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ConfigError(
        f"unsupported database URL {url!r}: use sqlite:///path/to/file.db or postgresql://..."
    )


def connect(
    url: str | None = None,
    *,
    secret: str | bytes | None = None,
    clock: Clock | None = None,
    migrate: bool = True,
) -> Database:
    """Open a jobq database; with no URL, the SQLite file `./jobq.db`.

    `secret` (default: the `JOBQ_SECRET` environment variable) signs every stored payload;
    workers must share it. The schema is created or upgraded on first connect.
    """
    store = open_store(url)
    if secret is None:
        secret = os.environ.get("JOBQ_SECRET") or None
    db = Database(store, secret=secret, clock=clock, url=url)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return db


class Database(CompositionOps):
    """A connection to one jobq database (SQLite file or PostgreSQL)."""

    def __init__(
        self,
        store: Store,
        *,
        secret: str | bytes | None = None,
        clock: Clock | None = None,
        url: str | None = None,
    ) -> None:
        self.store = store
        self.url = url
        self.codec = Codec(secret)
        self.clock: Clock = clock or SystemClock()
        self._known_queues: set[str] = set()
        # jobq.testing's inline mode: called as (queue name, jobs, committed) after each put
        # and each callback added; None (the default) costs nothing.
        self._after_put: Callable[[str, list[Job], bool], None] | None = None

    @property
    def engine(self) -> str:
        """ "sqlite" or "postgres"."""
        return self.store.engine

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"<jobq.Database {self.engine} {self.url or DEFAULT_SQLITE_PATH}>"

    # -- public ------------------------------------------------------------------------------
    def queue(self, name: str = "") -> Queue:
        """The queue called `name` ("" is the default queue); created on first use."""
        if not isinstance(name, str):
            raise TypeError(f"queue name must be a string, got {name!r}")
        if name not in self._known_queues:
            self.store.ensure_queue(name, self.clock.now())
            self._known_queues.add(name)
        return Queue(self, name)

    def get_job(self, job_id: int) -> Job:
        """The job with this id; JobNotFound if there is none."""
        record = self.store.get(int(job_id))
        if record is None:
            raise JobNotFound(f"no job with id {job_id}")
        return self._job_from_record(record)

    def worker(
        self,
        *,
        queues: Sequence[str] = ("",),
        agents: Sequence[AgentSpec] | None = None,
        uuid: str | None = None,
        poll_interval: float = 1.0,
        ping_interval: float = 5.0,
        death_interval: float = 30.0,
        grace: float = 30.0,
    ) -> Dispatcher:
        """A dispatcher for this process; `start()` it to run jobs in background threads.

        It pings every `ping_interval` seconds; one silent for `death_interval` is presumed
        dead by its siblings, which hand its jobs on. On stop, running jobs get `grace`
        seconds before they are handed on.
        """
        from jobq.worker.dispatcher import Dispatcher

        return Dispatcher(
            self,
            queues=queues,
            agents=agents,
            uuid=uuid,
            poll_interval=poll_interval,
            ping_interval=ping_interval,
            death_interval=death_interval,
            grace=grace,
        )

    def set_dispatcher_intervals(
        self, uuid: str, *, ping_interval: float, death_interval: float
    ) -> None:
        """Change a running dispatcher's ping and death intervals; used from its next ping."""
        if ping_interval <= 0 or death_interval <= ping_interval:
            raise ValueError(
                f"need 0 < ping_interval < death_interval, got {ping_interval} and {death_interval}"
            )
        if not self.store.set_dispatcher_intervals(str(uuid), ping_interval, death_interval):
            raise LookupError(f"no dispatcher {uuid} in this database")

    # -- agents of running dispatchers (read by each worker about every second) ----------------
    def agents(self, uuid: str) -> list[AgentRecord]:
        """The agents of dispatcher `uuid` (every queue), as the worker reads them."""
        return self.store.agents(str(uuid))

    def set_agent(
        self,
        uuid: str,
        queue: str,
        name: str,
        *,
        size: int | None = None,
        filter: str | _Keep | None = _KEEP,
    ) -> AgentRecord:
        """Add agent `name` of `queue` to dispatcher `uuid`, or change its `size` or `filter`
        (an import path `module:function`, or None for every job); what is not given is
        kept (a new agent: size 3, no filter). The worker uses it from its next read of its
        agents (about a second), for a queue it serves. A bad name, size or filter path is a
        `ConfigError` (a ValueError); an unknown dispatcher a LookupError."""
        from jobq.worker.agent import DEFAULT_SIZE, AgentSpec

        uuid = str(uuid)
        if self.store.get_dispatcher(uuid) is None:
            raise LookupError(f"no dispatcher {uuid} in this database")
        current = next(
            (a for a in self.store.agents(uuid) if (a.queue, a.name) == (queue, name)), None
        )
        if size is None:
            size = DEFAULT_SIZE if current is None else current.size
        if isinstance(filter, _Keep):
            filter = None if current is None else current.filter
        spec = AgentSpec(name, size, filter)  # checks the name, the size and the filter's import
        self.store.set_agent(uuid, queue, spec.name, spec.size, spec.filter)
        return AgentRecord(uuid, queue, spec.name, spec.size, spec.filter)

    def remove_agent(self, uuid: str, queue: str, name: str) -> None:
        """Remove agent `name` of `queue` from dispatcher `uuid`: the worker stops claiming for
        it at its next read (jobs it runs finish). LookupError if there is no such agent."""
        if not self.store.remove_agent(str(uuid), queue, name):
            raise LookupError(f"dispatcher {uuid} has no agent {name!r} of queue {queue!r}")

    # -- encoding ----------------------------------------------------------------------------
    def _new_row(
        self,
        queue: str,
        job: Job,
        begin_after: dt.datetime,
        begin_by: dt.timedelta | None,
        retry_policy: type[RetryPolicy] | None,
        failure_log_level: int | None,
        parent_id: int | None = None,
    ) -> NewJob:
        return self._encode_row(
            queue,
            job,
            begin_after,
            begin_by,
            None if retry_policy is None else policy_path(retry_policy),
            failure_log_level,
            current_dispatcher_uuid(),
            parent_id,
        )

    def _encode_row(
        self,
        queue: str,
        job: Job,
        begin_after: dt.datetime,
        begin_by: dt.timedelta | None,
        policy: str | None,
        failure_log_level: int | None,
        put_by: str | None,
        parent_id: int | None = None,
    ) -> NewJob:
        """The row of a new job, given what a batch works out once for all of its jobs: the
        retry policy's import path and the putting dispatcher."""
        func, args, kwargs = job._get_call()
        job_class = None
        if type(job) is not Job:
            cls = type(job)
            if "<locals>" in cls.__qualname__:
                raise EncodingError(
                    f"Job subclass {cls.__qualname__} must be defined at module level"
                )
            job_class = f"{cls.__module__}:{cls.__qualname__}"
        return NewJob(
            queue=queue,
            call=encode_call(self.codec, func, args, kwargs),
            call_repr=call_repr(func, args, kwargs),
            begin_after=begin_after,
            begin_by=None if begin_by is None else begin_by.total_seconds(),
            job_class=job_class,
            retry_policy=policy,
            failure_log_level=failure_log_level,
            put_by=put_by,
            parent_id=parent_id,
        )

    def _job_from_record(self, record: JobRecord) -> Job:
        cls: type[Job] = Job
        if record.job_class:
            try:
                module, _, name = record.job_class.partition(":")
                found = importlib.import_module(module)
                for part in name.split("."):
                    found = getattr(found, part)
                if isinstance(found, type) and issubclass(found, Job):
                    cls = found
            except (ImportError, AttributeError):
                events_log.warning(
                    "job %s: cannot import its class %s", record.id, record.job_class
                )
        job = cls.__new__(cls)
        Job.__init__(job, _placeholder)
        job._call = None
        job._payload = record.call
        job._decode = self.codec.loads
        self._apply(job, record)
        return job

    def _apply(self, job: Job, record: JobRecord) -> None:
        job.id = record.id
        job.queue_name = record.queue
        job.status = Status(record.status)
        job.begin_after = record.begin_after
        job.begin_by = None if record.begin_by is None else dt.timedelta(seconds=record.begin_by)
        job.created = record.created
        job.active_start = record.active_start
        job.active_end = record.active_end
        job.completed_at = record.completed_at
        job.annotations = record.annotations
        job.failed = record.failed
        job.failure = (
            None
            if record.failure is None
            else Failure(
                type_name=record.failure["type_name"],
                message=record.failure["message"],
                traceback=record.failure.get("traceback", ""),
                type_names=tuple(record.failure.get("type_names", ())),
                verbose=record.failure.get("verbose", ""),
            )
        )
        job.call_repr = record.call_repr
        job.parent_id = record.parent_id
        job.waiting_on = record.waiting_on
        job.attempt = record.attempt
        job.dispatcher_uuid = record.dispatcher_uuid
        job.agent_name = record.agent_name
        job.retry_data = record.retry_data
        job.retry_policy = record.retry_policy
        job.failure_log_level = record.failure_log_level
        job._result = _unset()
        job._backend = self

    # -- what Queue and Job call -------------------------------------------------------------
    def _put(
        self,
        queue: Queue,
        jobs: list[Job],
        *,
        begin_after: dt.datetime | None,
        begin_by: dt.timedelta | None,
        retry_policy: type[RetryPolicy] | None,
        failure_log_level: int | None,
        conn: Any,
        quota_names: tuple[str, ...] | None = None,
    ) -> list[Job]:
        now = self.clock.now()
        fresh = [j for j in jobs if not j.stored]

        policy = None if retry_policy is None else policy_path(retry_policy)
        put_by = current_dispatcher_uuid()

        def encode() -> Iterator[NewJob]:
            for job in fresh:
                row = self._encode_row(
                    queue.name,
                    job,
                    begin_after or job.begin_after or now,
                    begin_by if begin_by is not None else job.begin_by,
                    policy,
                    failure_log_level,
                    put_by,
                )
                if quota_names:  # checked by Queue.put_many against the queue's quotas
                    row.quota_names = quota_names
                yield row

        # A single row is encoded at once; a batch lazily (see _EncodedRows).
        rows = list(encode()) if len(fresh) < 2 else _EncodedRows(len(fresh), encode())
        stored = [j for j in jobs if j.stored]
        if stored and conn is None:
            # Requeueing may find a job already taken: insert and requeue in one transaction,
            # so that put_many stores all of its jobs or none.
            own = self.store.attempt_connection()
            try:
                ids = self._write_put(
                    queue, rows, stored, begin_after, begin_by, now, own.raw, quota_names
                )
                own.commit()
            finally:
                own.close()
        else:
            ids = self._write_put(
                queue, rows, stored, begin_after, begin_by, now, conn, quota_names
            )
        for job, row, job_id in zip(fresh, rows, ids, strict=True):
            job.id = job_id
            job.queue_name = queue.name
            job.status = Status.PENDING
            job.begin_after = row.begin_after
            if begin_by is not None:
                job.begin_by = begin_by
            job.created = now
            job.call_repr = row.call_repr
            job.failure_log_level = failure_log_level
            job.retry_policy = policy
            job._backend = self
        if conn is None:
            for job in stored:
                job.refresh()
            events_log.debug("put %d job(s) in queue %r", len(jobs), queue.name)
        if self._after_put is not None:
            self._after_put(queue.name, jobs, conn is None)
        return jobs

    def _write_put(
        self,
        queue: Queue,
        rows: list[NewJob],
        stored: list[Job],
        begin_after: dt.datetime | None,
        begin_by: dt.timedelta | None,
        now: dt.datetime,
        conn: Any,
        quota_names: tuple[str, ...] | None = None,
    ) -> list[int]:
        ids = self.store.enqueue(rows, now, conn=conn) if rows else []
        for job in stored:
            assert job.id is not None
            when = begin_after or job.begin_after or now
            by = begin_by if begin_by is not None else job.begin_by
            ok = self.store.requeue(
                job.id,
                queue.name,
                when,
                None if by is None else by.total_seconds(),
                current_dispatcher_uuid(),
                now,
                conn=conn,
                quota_names=quota_names,
            )
            if not ok:
                raise ValueError(
                    f"cannot add already-assigned job {job.id}: it is no longer new "
                    f"(pull it from its queue first, or put a new Job)"
                )
        return ids

    def _refresh_job(self, job: Job) -> None:
        assert job.id is not None
        record = self.store.get(job.id)
        if record is None:
            raise JobNotFound(f"job {job.id} no longer exists (pruned?)")
        self._apply(job, record)

    def _load_result(self, job: Job) -> Any:
        assert job.id is not None
        payload = self.store.get_result(job.id)
        return None if payload is None else self.codec.loads(payload)

    def _fail_job(self, job: Job, exc: BaseException | None) -> None:
        assert job.id is not None
        from jobq.errors import TimeoutError as JobTimeout

        error = exc if exc is not None else JobTimeout(f"job {job.id} was failed before it started")
        failure = Failure.from_exception(error)
        outcome = Outcome(
            result=None, result_repr=str(failure), failed=True, failure=failure_dict(failure)
        )
        if not self.store.fail_unstarted(job.id, outcome, self.clock.now()):
            job.refresh()
            raise BadStatusError(
                f"can only call fail on a job with new, pending, or assigned status; "
                f"job {job.id} is {job.status}"
            )
        level = job.failure_log_level or logging.ERROR
        events_log.log(level, "job %s failed before it started: %s", job.id, failure)
        job.refresh()

    def _add_callback(
        self,
        job: Job,
        callback: Job,
        *,
        failure_log_level: int | None,
        retry_policy: type[RetryPolicy] | None,
    ) -> Job:
        assert job.id is not None
        if callback.stored:
            raise ValueError(f"{callback!r} is already stored; a callback must be a new Job")
        now = self.clock.now()
        row = self._new_row(
            job.queue_name or "",
            callback,
            now,
            None,
            retry_policy,
            logging.CRITICAL if failure_log_level is None else failure_log_level,
            parent_id=job.id,
        )
        callback.id = self.store.add_callback(job.id, row, now)
        callback._backend = self
        callback.refresh()
        if self._after_put is not None:
            self._after_put(callback.queue_name or "", [callback], True)
        return callback

    def _wait_for_change(self, job: Job, timeout: float) -> None:
        time.sleep(max(0.0, timeout))

    # -- annotations (Job.set_annotation, jobq.local's live annotations) ----------------------
    def _set_annotation(self, job: Job, name: str, value: Any) -> None:
        """Write one annotation in its own short transaction (JSON already checked)."""
        assert job.id is not None
        self.store.set_annotation(job.id, name, value)

    def _read_annotations(self, job: Job) -> dict[str, Any]:
        """The job's annotations as stored now (the handle's snapshot is left alone)."""
        assert job.id is not None
        record = self.store.get(job.id)
        if record is None:
            raise JobNotFound(f"job {job.id} no longer exists (pruned?)")
        return record.annotations


def _placeholder() -> None:
    """Stands in for a loaded job's callable until the row's payload is decoded."""


def _unset() -> Any:
    from jobq.model.job import _UNSET

    return _UNSET


class _EncodedRows(Sequence[NewJob]):
    """The rows of a put, each encoded when first read: a store that sends a big batch in
    parts (PostgreSQL) encodes each part while the server inserts the one before."""

    def __init__(self, count: int, encode: Iterator[NewJob]) -> None:
        self._count = count
        self._encode = encode
        self._rows: list[NewJob] = []

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[NewJob]:  # Sequence's own would end on an IndexError
        if len(self._rows) == self._count:
            return iter(self._rows)  # all encoded: the usual second reading
        return self._encoding()

    def _encoding(self) -> Iterator[NewJob]:
        rows, encode = self._rows, self._encode
        for index in range(self._count):
            if index == len(rows):
                rows.append(next(encode))
            yield rows[index]

    @overload
    def __getitem__(self, index: int) -> NewJob: ...
    @overload
    def __getitem__(self, index: slice) -> list[NewJob]: ...
    def __getitem__(self, index: int | slice) -> NewJob | list[NewJob]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        while len(self._rows) <= index:
            self._rows.append(next(self._encode))
        return self._rows[index]
