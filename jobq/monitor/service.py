"""`Monitor`: the database-wide monitor tools (the original's `asyncdb`) and operator actions.

Every read goes through the store's monitoring read models; the results are the typed view
records of `jobq.monitor.views`, which the CLI's tables, its `--json` output and the web
dashboard all render. Commands and pages reach the store only through these methods. Pending jobs
selected by `agent:` or `uuid:` are the ones those agents' filters would accept (the filters
are Python predicates, judged here on up to `PENDING_SCAN` pending jobs).

Retrying a failed job puts a *copy* (same call, queue, retry policy, log level, quota names;
a callback's copy is a new callback of the same parent, so it gets the parent's result
again). The failed job stays as it was, for the record; the two are linked by the annotations
`retried_as` and `retry_of`.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import fnmatch
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from jobq.errors import (
    AbortedError,
    BadStatusError,
    CancelledError,
    EncodingError,
    JobNotFound,
    QueueNotFound,
)
from jobq.jobs.rows import missing_job
from jobq.model.failure import Failure, failure_from_dict
from jobq.model.limits import time_limit_of
from jobq.model.retry import retries_of
from jobq.monitor.filters import Selection, parse_selection
from jobq.monitor.views import (
    AgentView,
    BulkResult,
    DispatcherView,
    JobRow,
    JobStats,
    JobSummary,
    QueueView,
    QuotaView,
    RateLimitView,
    StatusView,
    TimedJob,
    TreeNode,
)
from jobq.store.base import (
    AgentLoad,
    DispatcherRecord,
    JobQuery,
    JobRecord,
    PruneResult,
    ThroughputBucket,
    is_dead,
)
from jobq.worker.agent import load_filter
from jobq.worker.recovery import hand_on
from jobq.worker.retention import DEFAULT_KEEP

if TYPE_CHECKING:
    from jobq.database import Database
    from jobq.model.job import Job

events_log = logging.getLogger("jobq.events")

PENDING_SCAN = 10000
BULK_MAX = 100_000  # jobs one bulk action considers
_CANCELLED = f"{CancelledError.__module__}.{CancelledError.__qualname__}"
DETAILS = ("brief", "default", "verbose")


def _glob(pattern: str | None, value: str | None) -> bool:
    if pattern is None:
        return True
    return fnmatch.fnmatch((value or "").lower(), pattern.lower())


def wait_of(record: JobRecord, now: dt.datetime) -> dt.timedelta:
    """From begin_after to the start (or the end of a job failed unstarted, or now)."""
    end = record.active_start or record.active_end or now
    return end - record.begin_after


def error_of(record: JobRecord) -> str | None:
    """A failed job's failure as `Type: message` (the type's own name), else None."""
    if not record.failed or not record.failure:
        return None
    kind = str(record.failure.get("type_name") or "?").rsplit(".", 1)[-1]
    message = str(record.failure.get("message") or "")
    return f"{kind}: {message}" if message else kind


def resolve_callable(path: str) -> Callable[..., Any]:
    """The callable at `package.module:function` (a dotted attribute path after the colon is
    allowed); ValueError saying what is wrong otherwise."""
    import importlib

    module_name, colon, attribute = path.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(
            f"bad import path {path!r}: use package.module:function (e.g. reports:monthly)"
        )
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:
        raise ValueError(
            f"cannot import module {module_name!r} ({type(error).__name__}: {error}); run "
            f"from the application's folder or give --path DIR"
        ) from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no {attribute!r}") from None
    if not callable(target):
        raise ValueError(f"{path} is {type(target).__name__}, not a function")
    return cast(Callable[..., Any], target)


def active_of(record: JobRecord, now: dt.datetime) -> dt.timedelta | None:
    if record.active_start is None:
        return None
    return (record.active_end or now) - record.active_start


def progress_of(record: JobRecord) -> float | None:
    """The annotation `progress` as a fraction 0..1: a number, or {"done": d, "total": t}."""
    value = record.annotations.get("progress")
    try:
        if isinstance(value, dict):
            total = float(value.get("total") or 0)
            return None if total <= 0 else min(1.0, max(0.0, float(value["done"]) / total))
        if isinstance(value, int | float):
            return min(1.0, max(0.0, float(value)))
    except (KeyError, TypeError, ValueError):
        return None
    return None


def dispatcher_state(record: DispatcherRecord, now: dt.datetime) -> str:
    """ "alive", "dead" (silent past its death interval) or "deactivated"."""
    if record.activated is None:
        return "deactivated"
    return "dead" if is_dead(record, now) else "alive"


class Monitor:
    """Monitoring reads and operator actions over one `Database`. (Its method `list` shadows
    the builtin in this class body: annotations below it say `builtins.list`.)"""

    def __init__(self, db: Database, *, this_uuid: str | None = None) -> None:
        self.db = db
        self.store = db.store
        self.this_uuid = this_uuid

    def now(self) -> dt.datetime:
        return self.db.clock.now()

    def liveness_now(self) -> dt.datetime:
        """The time a dispatcher's pings are judged in (the database server's on PostgreSQL,
        as the workers judge them), unless jobq runs on an injected clock."""
        return self.db.database_now()

    # -- the Database internals this uses (one line each, for when they change) ------------------
    def _job(self, record: JobRecord) -> Job:
        """The `Job` of a record, as an agent's filter is given it."""
        return self.db.rows.job(record)

    def _hand_on(self, records: Sequence[JobRecord], reason: str) -> int:
        """Hand on held jobs as the worker's recovery does; returns how many moved."""
        return hand_on(self.db.rows, records, reason)

    # -- parsing ---------------------------------------------------------------------------------
    def select(self, args: Sequence[str], **kwargs: Any) -> Selection:
        return parse_selection(args, self.now(), this_uuid=self.this_uuid, **kwargs)

    # -- dispatchers and queues ------------------------------------------------------------------
    def dispatcher_view(
        self, record: DispatcherRecord, agents: Sequence[AgentLoad], now: dt.datetime
    ) -> DispatcherView:
        """A dispatcher record with those of `agents` that are its own."""
        return DispatcherView(
            uuid=record.uuid,
            host=record.host,
            pid=record.pid,
            started=record.started,
            activated=record.activated,
            deactivated=record.deactivated,
            last_ping=record.last_ping,
            since_ping=None if record.last_ping is None else now - record.last_ping,
            dead=record.activated is not None and is_dead(record, now),
            state=dispatcher_state(record, now),
            ping_interval=dt.timedelta(seconds=record.ping_interval),
            death_interval=dt.timedelta(seconds=record.death_interval),
            agents=tuple(
                AgentView(
                    queue=a.queue,
                    name=a.name,
                    size=a.size,
                    held=a.assigned + a.active + a.callbacks,
                    active=a.active,
                    filter=a.filter,
                    waiting=a.waiting,
                )
                for a in agents
                if a.dispatcher_uuid == record.uuid
            ),
        )

    def dispatchers(self) -> list[DispatcherView]:
        """Every dispatcher record (alive, dead, deactivated) with its agents and their load."""
        now = self.liveness_now()
        agents = self.store.agent_loads()
        return [self.dispatcher_view(d, agents, now) for d in self.store.list_dispatchers()]

    def status(
        self, queue: str | None = None, agent: str | None = None, uuid: str | None = None
    ) -> StatusView:
        """The queues matching `queue` (a glob) with their counts, and under each the
        activated dispatchers (all, or `uuid`) having agents (matching `agent`) for it."""
        if uuid is not None and uuid.upper() == "THIS":
            if self.this_uuid is None:
                raise ValueError("uuid:THIS needs JOBQ_UUID (or --uuid) set to a worker's UUID")
            uuid = self.this_uuid
        now = self.now()
        agents = [a for a in self.store.agent_loads() if _glob(agent, a.name)]
        records = {
            d.uuid: d
            for d in self.store.list_dispatchers()
            if d.activated is not None and (uuid is None or d.uuid == uuid)
        }
        limits: dict[str, list[RateLimitView]] = {}
        for view in self.rate_limits(at=now):
            limits.setdefault(view.queue, []).append(view)
        queues = []
        alive_at = self.liveness_now() if records else now
        for q in self.store.queue_stats(now):
            if not _glob(queue, q.name):
                continue
            dispatchers = []
            for d in records.values():
                mine = [a for a in agents if a.dispatcher_uuid == d.uuid and a.queue == q.name]
                if mine:
                    dispatchers.append(self.dispatcher_view(d, mine, alive_at))
            queues.append(
                QueueView(
                    name=q.name,
                    paused=q.paused,
                    pending=q.pending,
                    due=q.due,
                    assigned=q.assigned,
                    active=q.active,
                    callbacks=q.callbacks,
                    succeeded=q.succeeded,
                    failed=q.failed,
                    dispatchers=tuple(dispatchers),
                    rate_limits=tuple(limits.get(q.name, ())),
                )
            )
        return StatusView(tuple(queues))

    def throughput(self, width: dt.timedelta, count: int) -> list[ThroughputBucket]:
        """Jobs completed per `width`, in the `count` buckets that end with the current one."""
        now = self.now()
        since = now - width * (count - 1) - dt.timedelta(seconds=now.second % 60)
        return self.store.throughput(since, width, count)

    # -- jobs ------------------------------------------------------------------------------------
    def _agents_for(self, query: JobQuery) -> list[tuple[str, Callable[[Any], bool] | None]]:
        """(queue, predicate) of the live agents matching the agent/uuid filters."""
        now = self.liveness_now()
        live = {
            d.uuid for d in self.store.list_dispatchers() if dispatcher_state(d, now) == "alive"
        }
        found = []
        for a in self.store.agent_loads():
            if a.dispatcher_uuid not in live or not _glob(query.agent, a.name):
                continue
            if query.uuid is not None and a.dispatcher_uuid != query.uuid:
                continue
            if not _glob(query.queue, a.queue):
                continue
            found.append((a.queue, None if a.filter is None else load_filter(a.filter)))
        return found

    def _pending_by_agent(self, query: JobQuery, now: dt.datetime) -> list[JobRecord]:
        agents = self._agents_for(query)
        if not agents:
            return []
        queues = tuple(sorted({q for q, _ in agents}))
        candidates = self.store.list_jobs(
            dataclasses.replace(query, states=("pending",), agent=None, uuid=None, queues=queues),
            now,
            limit=PENDING_SCAN,
        )
        accepted = []
        for record in candidates:
            for queue, predicate in agents:
                if queue != record.queue:
                    continue
                if predicate is None or self._accepts(predicate, record):
                    accepted.append(record)
                    break
        return accepted

    def _accepts(self, predicate: Callable[[Any], bool], record: JobRecord) -> bool:
        try:
            return bool(predicate(self._job(record)))
        except Exception:
            return False

    def _split(self, query: JobQuery) -> tuple[bool, JobQuery]:
        """(pending judged by agents' filters?, the query for the other states)."""
        by_agent = (query.agent is not None or query.uuid is not None) and (
            "pending" in query.states
        )
        if not by_agent:
            return False, query
        rest = tuple(s for s in query.states if s != "pending")
        return True, dataclasses.replace(query, states=rest)

    def list(self, query: JobQuery, *, offset: int = 0, limit: int = 50) -> list[JobRecord]:
        """Jobs in the catalogue's order: pending, then held by agents, then completed."""
        now = self.now()
        by_agent, rest = self._split(query)
        if not by_agent:
            return self.store.list_jobs(query, now, offset=offset, limit=limit)
        pending = self._pending_by_agent(query, now)
        others = self.store.list_jobs(rest, now, offset=0, limit=offset + limit)
        return (pending + others)[offset : offset + limit]

    def rows(self, records: Sequence[JobRecord]) -> builtins.list[JobRow]:
        """The listing lines of `records`, their wait and active time as of now."""
        now = self.now()
        return [
            JobRow(
                id=r.id,
                status=r.status,
                failed=r.failed,
                queue=r.queue,
                agent=r.agent_name,
                call=r.call_repr,
                begin_after=r.begin_after,
                priority=r.priority,
                wait=wait_of(r, now),
                active=active_of(r, now),
                error=error_of(r),
            )
            for r in records
        ]

    def count(self, query: JobQuery) -> int:
        by_agent, rest = self._split(query)
        if not by_agent:
            return self.store.count_jobs(query)
        return len(self._pending_by_agent(query, self.now())) + self.store.count_jobs(rest)

    def jobstats(self, query: JobQuery) -> JobStats:
        """Counts per state and the longest/shortest wait and active time, with their jobs."""
        now = self.now()
        by_agent, rest = self._split(query)
        stats = self.store.job_stats(rest, now)
        counts = dict(stats.counts)
        candidates: list[JobRecord] = [
            r
            for r in (
                stats.longest_wait,
                stats.shortest_wait,
                stats.longest_active,
                stats.shortest_active,
            )
            if r is not None
        ]
        if by_agent:
            pending = self._pending_by_agent(query, now)
            counts["pending"] = len(pending)
            candidates += pending
        waits = [(wait_of(r, now), r.id) for r in candidates]
        actives = [(d, r.id) for r in candidates if (d := active_of(r, now)) is not None]

        def pick(items: list[tuple[dt.timedelta, int]], longest: bool) -> TimedJob | None:
            if not items:
                return None
            key = (lambda x: (x[0], -x[1])) if longest else (lambda x: (x[0], x[1]))
            best = max(items, key=key) if longest else min(items, key=key)
            return TimedJob(best[0], best[1])

        return JobStats(
            counts=counts,
            longest_wait=pick(waits, True),
            shortest_wait=pick(waits, False),
            longest_active=pick(actives, True),
            shortest_active=pick(actives, False),
        )

    def record(self, job_id: int) -> JobRecord:
        record = self.store.get(int(job_id))
        if record is None:
            raise missing_job(self.store, int(job_id))
        return record

    def failure(self, record: JobRecord) -> Failure | None:
        if not record.failed or record.failure is None:
            return None
        return failure_from_dict(record.failure)

    def summary(self, record: JobRecord) -> JobSummary:
        """The catalogue's job summary: identity, call, times, wait/active, outcome."""
        now = self.now()
        failure = self.failure(record)
        done = record.status in ("callbacks", "completed")
        if failure is not None:
            result: str | None = failure.brief_traceback()
        else:
            result = record.result_repr if done else None
        retries, retried = retries_of(record.retry_data)
        return JobSummary(
            id=record.id,
            call=record.call_repr,
            status=record.status,
            queue=record.queue,
            priority=record.priority,
            agent=record.agent_name,
            dispatcher=record.dispatcher_uuid,
            attempt=record.attempt,
            parent=record.parent_id,
            waiting_on=record.waiting_on,
            callbacks=tuple(c.id for c in self.store.job_children(record.id)),
            quota_names=tuple(record.quota_names),
            rate_limits=tuple(record.rate_limits),
            unique_key=record.unique_key,
            unique_while=record.unique_while,
            annotations=record.annotations,
            progress=progress_of(record),
            retry_data=record.retry_data,
            retry_policy=record.retry_policy,
            retries=retries,
            retried=retried,
            next_run=record.begin_after if record.status == "pending" else None,
            created=record.created,
            begin_after=record.begin_after,
            begin_by=None if record.begin_by is None else dt.timedelta(seconds=record.begin_by),
            time_limit=time_limit_of(record.retry_data),
            assigned=record.assigned_at,
            active_start=record.active_start,
            active_end=record.active_end,
            callbacks_end=record.completed_at,
            wait=wait_of(record, now),
            active=active_of(record, now),
            failed=record.failed,
            result=result,
            keep_result=None
            if record.keep_result is None
            else dt.timedelta(seconds=record.keep_result),
            expires_at=record.expires_at,
        )

    def job(self, job_id: int) -> JobSummary:
        return self.summary(self.record(job_id))

    def tree(self, job_id: int, depth: int = 5) -> TreeNode:
        """The job and its callbacks, recursively (`depth` levels of callbacks)."""
        record = self.record(job_id)
        return self._tree(record, depth)

    def _tree(self, record: JobRecord, depth: int) -> TreeNode:
        children = self.store.job_children(record.id) if depth > 0 else []
        return TreeNode(
            id=record.id,
            call=record.call_repr,
            status=record.status,
            failed=record.failed,
            waiting_on=record.waiting_on,
            callbacks=tuple(self._tree(c, depth - 1) for c in children),
        )

    def traceback(self, job_id: int, detail: str = "default") -> str | None:
        """The failure's traceback (brief, default, or verbose with frame locals), or None
        if the job has no failure."""
        if detail not in DETAILS:
            raise ValueError(f"detail must be one of {', '.join(DETAILS)}, not {detail!r}")
        failure = self.failure(self.record(job_id))
        if failure is None:
            return None
        if detail == "brief":
            return failure.brief_traceback()
        if detail == "verbose":
            if not failure.verbose:
                return (
                    f"{failure.traceback.rstrip()}\n\n(Frame locals were not recorded: a "
                    "worker records them when started with --traceback-locals.)"
                )
            return f"{failure.traceback.rstrip()}\n\nFrames with locals:\n{failure.verbose}"
        return failure.traceback or str(failure)

    def nextpending(self, args: Sequence[str] = ()) -> JobSummary | None:
        sel = self.select(
            args,
            require_states=False,
            default_states=("pending",),
            forbidden=("start", "end", "callbacks_completed"),
        )
        if sel.query.states != ("pending",):
            raise ValueError("nextpending takes filters only, no states")
        found = self.list(sel.query, limit=1)
        return self.summary(found[0]) if found else None

    def lastcompleted(self, args: Sequence[str] = ()) -> JobSummary | None:
        sel = self.select(args, require_states=False, default_states=("completed",))
        if sel.query.states != ("completed",):
            raise ValueError("lastcompleted takes filters only (or succeeded / failed)")
        found = self.list(sel.query, limit=1)
        return self.summary(found[0]) if found else None

    # -- operator actions ------------------------------------------------------------------------
    def cancel_job(self, job_id: int) -> JobRecord:
        """Cancel a job that has not started (new, pending or assigned) as `job.cancel()`
        does: it leaves its queue and completes with a `jobq.CancelledError` failure, which its
        callbacks receive. A running or completed job is a BadStatusError."""
        self.db.get_job(job_id).cancel()
        return self.record(job_id)

    def pull(self, job_id: int) -> JobRecord:
        """Pull a pending job out of its queue (it becomes "new": `put` it again later)."""
        return self._pull(job_id, "pull")

    def cancel(self, job_id: int) -> JobRecord:
        """The old name of `pull` (kept for the dashboard's "cancel (pull)" action): it does
        NOT cancel the job; `cancel_job` does what `job.cancel()` does."""
        return self._pull(job_id, "cancel")

    def _pull(self, job_id: int, verb: str) -> JobRecord:
        record = self.record(job_id)
        if record.status != "pending":
            raise BadStatusError(f"can only {verb} a pending job; job {job_id} is {record.status}")
        if record.parent_id is not None:
            raise BadStatusError(
                f"job {job_id} is a callback of job {record.parent_id}; pulling it would leave "
                f"its parent waiting forever: fail it instead"
            )
        if not self.store.remove(record.queue, record.id):
            raise BadStatusError(f"job {job_id} was claimed meanwhile; it is no longer pending")
        events_log.info("job %s pulled from queue %r by an operator", job_id, record.queue)
        return self.record(job_id)

    # -- bulk actions ----------------------------------------------------------------------------
    def select_for(self, args: Sequence[str], state: str) -> JobQuery:
        """The query of a bulk action on the `state` ("pending" or "failed") jobs matching
        the filters `args` (no states: the action says which)."""
        sel = self.select(args, require_states=False, default_states=(state,))
        wanted, failed = (("completed",), True) if state == "failed" else ((state,), None)
        if sel.query.states != wanted or sel.query.failed != failed:
            raise ValueError(f"give filters only (no states): this acts on {state} jobs")
        return sel.query

    def cancel_many(self, query: JobQuery, *, dry_run: bool = False) -> BulkResult:
        """Cancel (as `cancel_job`) every pending job `query` selects; `dry_run`: only say
        which. A job claimed meanwhile is skipped."""
        records = self.list(query, limit=BULK_MAX)
        result = BulkResult(selected=tuple(r.id for r in records))
        if dry_run:
            return result
        done, skipped = [], []
        for record in records:
            try:
                self.cancel_job(record.id)
                done.append(record.id)
            except (BadStatusError, JobNotFound):
                skipped.append(record.id)
        events_log.info("%d job(s) cancelled by an operator", len(done))
        return dataclasses.replace(result, done=tuple(done), skipped=tuple(skipped))

    def retry_many(self, query: JobQuery, *, dry_run: bool = False) -> BulkResult:
        """Retry (as `retry`) every failed job `query` selects, except those retried already
        (annotation `retried_as`) and those cancelled on purpose (`CancelledError`), which
        are `skipped`; `dry_run`: only say which. `new`: the copies' ids."""
        records = self.list(query, limit=BULK_MAX)

        def wanted(record: JobRecord) -> bool:
            cancelled = (record.failure or {}).get("type_name") == _CANCELLED
            return "retried_as" not in record.annotations and not cancelled

        fresh = [r for r in records if wanted(r)]
        result = BulkResult(
            selected=tuple(r.id for r in fresh),
            skipped=tuple(r.id for r in records if not wanted(r)),
        )
        if dry_run:
            return result
        done, new = [], []
        # Oldest first: a parent is retried before its callbacks, whose copies then become
        # callbacks of the parent's copy (and get its result).
        for record in sorted(fresh, key=lambda r: r.id):
            new.append(self.retry(record.id).id)
            done.append(record.id)
        return dataclasses.replace(result, done=tuple(done), new=tuple(new))

    def put_job(
        self,
        path: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str = "",
        begin_after: dt.datetime | None = None,
        retries: int | None = None,
        timeout: float | None = None,
        priority: int | None = None,
        keep_result: dt.timedelta | None = None,
        unique_key: str | None = None,
        unique_while: Sequence[str] | None = None,
        unique_for: dt.timedelta | None = None,
        on_conflict: str | None = None,
    ) -> tuple[JobRecord, str]:
        """Put a job calling the function at import path `path` (`package.module:function`)
        with `args` and `kwargs` (and `retries`, `timeout`, `priority`, `keep_result` and the
        unique options, as `Queue.put`): its record (with a held key, the holder's) and what
        the put did, "created", "existing" or "replaced" (`job.put_outcome`). ValueError if the
        path is malformed or does not name an importable callable, or the priority is out of
        range (nothing is stored then)."""
        from jobq.model.job import Job

        func = resolve_callable(path)
        try:
            job = self.db.queue(queue).put(
                Job(func, *args, **(kwargs or {})),
                begin_after=begin_after,
                retries=retries,
                timeout=timeout,
                unique_key=unique_key,
                unique_while=unique_while,
                unique_for=unique_for,
                on_conflict=on_conflict,
                priority=priority,
                keep_result=keep_result,
            )
        except EncodingError as error:
            raise ValueError(str(error)) from None
        assert job.id is not None
        if job.put_outcome == "existing":
            events_log.info("job %s holds the unique key: the operator's put made none", job.id)
        else:
            events_log.info("job %s (%s) put in queue %r by an operator", job.id, path, queue)
        return self.record(job.id), job.put_outcome or "created"

    def requeue_dispatcher(self, uuid: str, *, force: bool = False) -> int:
        """Hand on now the jobs held by dispatcher `uuid` (claimed ones back to the front of
        their queue, running ones through their retry policy), deactivating it first rather
        than waiting for its death interval. Returns how many jobs moved. A dispatcher that
        still pings is refused unless `force`: it could then no longer complete its jobs."""
        record = self.store.get_dispatcher(uuid)
        if record is None:
            raise LookupError(f"no dispatcher {uuid} in this database")
        now = self.liveness_now()
        if record.activated is not None and not is_dead(record, now) and not force:
            raise BadStatusError(
                f"dispatcher {uuid} (host {record.host}, pid {record.pid}) last pinged at "
                f"{record.last_ping} and looks alive; stop it first, or force it (its running "
                f"jobs would then be retried elsewhere and it could not complete them)"
            )
        self.store.deactivate_dispatcher(uuid, now)
        moved = self._hand_on(self.store.dispatcher_jobs(uuid), "requeued by an operator")
        events_log.warning(
            "dispatcher %s deactivated by an operator; %d job(s) handed on", uuid, moved
        )
        return moved

    def fail(self, job_id: int, reason: str = "failed by an operator") -> JobRecord:
        """Complete a job that has not started (new, pending, assigned) with a failure;
        its callbacks get it."""
        self.db.get_job(job_id).fail(AbortedError(reason))
        return self.record(job_id)

    def retry(self, job_id: int) -> JobRecord:
        """Put a copy of a failed (completed) job as a new job; returns the new job."""
        record = self.record(job_id)
        if record.status != "completed" or not record.failed:
            raise BadStatusError(
                f"can only retry a failed, completed job; job {job_id} is {record.status}"
                + (" and succeeded" if record.status == "completed" else "")
            )
        new_id = self.store.retry_failed(record.id, self.now())
        if new_id is None:  # completed meanwhile? it was failed and completed when read
            raise BadStatusError(f"job {job_id} changed meanwhile; it cannot be retried now")
        events_log.info("job %s retried by an operator as job %s", job_id, new_id)
        return self.record(new_id)

    def pause(self, queue: str, *, create: bool = False) -> None:
        """Workers stop claiming from `queue` (running jobs go on) until `resume`. A queue
        that does not exist yet is refused (a typo would pause nothing), unless `create`."""
        if create:
            self.store.ensure_queue(queue, self.now())
        self._set_paused(queue, True)
        events_log.info("queue %r paused by an operator", queue)

    def resume(self, queue: str) -> None:
        self._set_paused(queue, False)
        events_log.info("queue %r resumed by an operator", queue)

    def _set_paused(self, queue: str, paused: bool) -> None:
        if not self.store.set_queue_paused(queue, paused):
            known = ", ".join(repr(q.name) for q in self.status().queues) or "none"
            raise QueueNotFound(
                f"no queue named {queue!r} (known queues: {known}); to pause a queue before "
                f"its first job, pass create=True (jobq pause --create)"
            )

    def prune(self, older_than: dt.timedelta) -> PruneResult:
        """Delete now the completed jobs (and stopped dispatcher records) older than
        `older_than`, and the jobs whose keep_result expired (as a worker's retention does),
        in as many batches as it takes."""
        now = self.now()
        expired = self.store.prune_expired(now, now - DEFAULT_KEEP, max_batches=1_000_000)
        result = self.store.prune(now - older_than, max_batches=1_000_000)
        return PruneResult(result.jobs, result.dispatchers, expired)

    # -- agents and quotas, changed while workers run (used at their next read) ------------------
    def agent_size(self, queue: str, name: str, size: int, uuid: str | None = None) -> int:
        """Set the size of agent `name` of `queue` (on one dispatcher, or all); the workers
        pick it up at their next read of their agents (about a second)."""
        changed = self.store.set_agent_size(queue, name, size, uuid)
        if not changed:
            where = f" on dispatcher {uuid}" if uuid else ""
            raise ValueError(f"no agent {name!r} of queue {queue!r}{where}")
        return changed

    def agent_owners(self, queue: str, name: str, uuid: str | None = None) -> builtins.list[str]:
        """The dispatchers having agent `name` of `queue` (only `uuid`, if given); ValueError
        if none has."""
        owners = sorted(
            {
                a.dispatcher_uuid
                for a in self.store.agent_loads()
                if (a.queue, a.name) == (queue, name) and uuid in (None, a.dispatcher_uuid)
            }
        )
        if not owners:
            where = f" on dispatcher {uuid}" if uuid else ""
            raise ValueError(f"no agent {name!r} of queue {queue!r}{where}")
        return owners

    def agent_add(
        self, uuid: str, queue: str, name: str, *, size: int, filter: str | None = None
    ) -> None:
        """Add agent `name` of `queue` to dispatcher `uuid`; ValueError if it has one."""
        if any((a.queue, a.name) == (queue, name) for a in self.db.agents(uuid)):
            raise ValueError(
                f"dispatcher {uuid} already has agent {name!r} of queue {queue!r}; "
                f"change it with agent-size or agent-filter"
            )
        self.db.set_agent(uuid, queue, name, size=size, filter=filter)

    def agent_remove(self, queue: str, name: str, uuid: str | None = None) -> int:
        """Remove agent `name` of `queue` (from `uuid`, or every dispatcher having it); its
        running jobs finish. Returns from how many dispatchers."""
        owners = self.agent_owners(queue, name, uuid)
        for owner in owners:
            self.db.remove_agent(owner, queue, name)
        return len(owners)

    def agent_filter(
        self, queue: str, name: str, filter: str | None, uuid: str | None = None
    ) -> int:
        """Set the filter of agent `name` of `queue` (None: every job), on `uuid` or every
        dispatcher having it. Returns on how many dispatchers."""
        owners = self.agent_owners(queue, name, uuid)
        for owner in owners:
            self.db.set_agent(owner, queue, name, filter=filter)
        return len(owners)

    def quotas(self, queue: str | None = None) -> builtins.list[QuotaView]:
        """The quotas (of `queue`, or all) with how many jobs hold a slot now."""
        return [
            QuotaView(q, name, size, len(self.store.quota_holders(q, name)))
            for q, name, size in self.store.quotas()
            if queue is None or q == queue
        ]

    def rate_limits(
        self, queue: str | None = None, *, at: dt.datetime | None = None
    ) -> builtins.list[RateLimitView]:
        """The rate limits (of `queue`, or all) with their claims in the window now (in the
        database's time, as claims count them) and the pending jobs naming them."""
        return [
            RateLimitView(
                queue=r.queue,
                name=r.name,
                limit=r.limit,
                per=dt.timedelta(seconds=r.per),
                used=r.used,
                waiting=r.waiting,
                frees_at=r.frees_at,
            )
            for r in self.store.rate_limits(queue, self.liveness_now() if at is None else at)
        ]

    def rate_limit_set(self, queue: str, name: str, limit: int, per: dt.timedelta) -> bool:
        """Set rate limit `name` of `queue` to `limit` claims per `per`, creating it if there
        is none (True if created). Bad values raise as `queue.rate_limits` does."""
        limits = self.db.queue(queue).rate_limits
        if name in limits:
            limits.change(name, limit=limit, per=per)
            return False
        limits.create(name, limit=limit, per=per)
        return True

    def rate_limit_remove(self, queue: str, name: str, *, force: bool = False) -> None:
        """Remove rate limit `name` of `queue` (see `RateLimits.remove`)."""
        self.db.queue(queue).rate_limits.remove(name, force=force)

    def quota_size(self, queue: str, name: str, size: int) -> None:
        """Set (or create) quota `name` of `queue` to `size`."""
        self.store.set_quota(queue, name, size)

    def quota_create(self, queue: str, name: str, size: int) -> None:
        """Create quota `name` of `queue`; ValueError if it exists."""
        self.db.queue(queue).quotas.create(name, size)

    def quota_remove(self, queue: str, name: str) -> None:
        """Remove quota `name` of `queue`; KeyError if there is none."""
        self.db.queue(queue).quotas.remove(name)
