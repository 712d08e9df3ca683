"""`connect()` and `Database`: the entry point, one per process and database.

A Database holds its parts: the engine's store, the clock, the codec (with the HMAC secret),
the job rows (`jobq.jobs.rows.JobRows`: encoding, puts, `Job` handles) and the composite
operations (`jobq.jobs.compose.Composition`). It hands out queues and workers, loads jobs by
id, and changes running workers' agents and intervals.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jobq._clock import Clock, SystemClock
from jobq._urls import masked_url
from jobq.errors import ConfigError, MissingExtra
from jobq.jobs.compose import Composition
from jobq.jobs.rows import JobRows
from jobq.jobs.schedules import DEFAULT_CATCH_UP, Schedule, ScheduleBook
from jobq.model.codec import Codec
from jobq.model.failure import DEFAULT_REDACT, TracebackLocals, redact_pattern
from jobq.model.job import Job
from jobq.model.retry import RetryPolicy
from jobq.queue import Queue
from jobq.store.base import AgentRecord, Store
from jobq.worker.agent import DEFAULT_SIZE, AgentSpec, filter_context
from jobq.worker.dispatcher import Dispatcher

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
        try:
            from jobq.store.postgres import PostgresStore
        except ImportError as error:
            if error.name and error.name.split(".")[0] in ("psycopg", "psycopg_pool"):
                raise MissingExtra("PostgreSQL (a postgresql:// URL)", "postgres", error) from error
            raise
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
    elif not isinstance(secret, str | bytes):
        raise ConfigError(
            f"secret must be a str or bytes (the key that signs stored payloads), not "
            f"{type(secret).__name__}"
        )
    db = Database(store, secret=secret, clock=clock, url=url)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return db


class Database:
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
        self.rows = JobRows(store, self.codec, self.clock)
        self.composition = Composition(self.rows)
        self.rows.composition = self.composition
        self.schedule_book = ScheduleBook(self.rows)
        self._known_queues: set[str] = set()

    @property
    def engine(self) -> str:
        """ "sqlite" or "postgres"."""
        return self.store.engine

    def database_now(self) -> dt.datetime:
        """The database's time (PostgreSQL's clock, shared by every machine; on SQLite this
        machine's), which liveness and rate limit windows are measured in; with an injected
        clock (tests), that clock's."""
        if isinstance(self.clock, SystemClock):
            return self.store.liveness_now()
        return self.clock.now()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"<jobq.Database {self.engine} {masked_url(self.url or DEFAULT_SQLITE_PATH)}>"

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
        return self.rows.get_job(job_id)

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
        traceback_locals: bool = False,
        redact_locals: str = DEFAULT_REDACT,
        import_retries: int = 10,
        job_timeout: dt.timedelta | float | None = None,
        timeout_grace: dt.timedelta | float | None = None,
    ) -> Dispatcher:
        """A dispatcher for this process; `start()` it to run jobs in background threads.

        It pings every `ping_interval` seconds; one silent for `death_interval` is presumed
        dead by its siblings, which hand its jobs on. On stop, running jobs get `grace`
        seconds before they are handed on. With `traceback_locals`, a job's failure records
        its frames' locals (logged, stored and shown), except those whose names match the
        regular expression `redact_locals`; off by default, since locals hold secrets.
        A job whose code this process cannot import is
        put back for another worker, up to `import_retries` times before it fails.
        `job_timeout` (timedelta or seconds > 0): the time limit of the jobs it runs that were
        put without their own (`put(..., timeout=...)`); `timeout_grace` (seconds >= 0, at
        most `job_timeout`): how long a job past its limit gets to end once its stop is
        requested before its attempt is taken away (default: a tenth of its limit, at most
        30 s). A `ConfigError` names a bad value.
        """
        try:
            locals_setting = TracebackLocals(traceback_locals, redact_pattern(redact_locals))
        except ValueError as error:
            raise ConfigError(str(error)) from None
        return Dispatcher(
            self.rows,
            owner=self,
            queues=queues,
            agents=agents,
            uuid=uuid,
            poll_interval=poll_interval,
            ping_interval=ping_interval,
            death_interval=death_interval,
            grace=grace,
            traceback_locals=locals_setting,
            import_retries=import_retries,
            job_timeout=job_timeout,
            timeout_grace=timeout_grace,
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
        seal = None
        if spec.filter is not None:
            seal = self.codec.seal(filter_context(uuid, queue, spec.name, spec.filter))
        self.store.set_agent(uuid, queue, spec.name, spec.size, spec.filter, seal)
        return AgentRecord(uuid, queue, spec.name, spec.size, spec.filter, seal)

    def remove_agent(self, uuid: str, queue: str, name: str) -> None:
        """Remove agent `name` of `queue` from dispatcher `uuid`: the worker stops claiming for
        it at its next read (jobs it runs finish). LookupError if there is no such agent."""
        if not self.store.remove_agent(str(uuid), queue, name):
            raise LookupError(f"dispatcher {uuid} has no agent {name!r} of queue {queue!r}")

    # -- schedules (cron jobs; every worker's schedules loop enqueues their ticks) -------------
    def schedule(
        self,
        name: str,
        cron: str,
        job: Job | Callable[..., Any],
        *,
        timezone: str = "UTC",
        queue: str = "",
        missed: str = "skip",
        catch_up: int = DEFAULT_CATCH_UP,
        retry_policy: type[RetryPolicy] | None = None,
        failure_log_level: int | None = None,
        priority: int = 0,
    ) -> Schedule:
        """Put `job` (a `Job` or a callable) in `queue` at each tick of the cron expression
        `cron` (five fields, or six with a leading seconds field), read in `timezone`; create
        the schedule `name` or replace its definition (a paused one stays paused). Each tick
        puts exactly one job, whatever the number of workers. Ticks no worker saw in time
        follow `missed`: "skip" them, run "once" for them, or run "all" of them (the latest
        `catch_up`). Its jobs have `priority` (as `Queue.put`'s). A bad expression, zone,
        policy, priority or job is a `ConfigError` (a bad job an `EncodingError`), and nothing
        is stored."""
        return self.schedule_book.save(
            name,
            cron,
            job,
            timezone=timezone,
            queue=queue,
            missed=missed,
            catch_up=catch_up,
            retry_policy=retry_policy,
            failure_log_level=failure_log_level,
            priority=priority,
        )

    def schedules(self) -> list[Schedule]:
        """Every schedule, by name, with its next and last run."""
        return self.schedule_book.all()

    def get_schedule(self, name: str) -> Schedule:
        """The schedule called `name`; `ScheduleNotFound` (a LookupError) if there is none."""
        return self.schedule_book.get(name)

    def unschedule(self, name: str) -> None:
        """Remove the schedule `name` (jobs it put stay); `ScheduleNotFound` if there is none."""
        self.schedule_book.remove(name)

    def pause_schedule(self, name: str) -> Schedule:
        """Stop putting jobs for `name` until `resume_schedule`."""
        return self.schedule_book.set_paused(name, True)

    def resume_schedule(self, name: str) -> Schedule:
        """Put jobs for `name` again, from its next tick after now (the paused ticks are not
        run)."""
        return self.schedule_book.set_paused(name, False)
