"""The monitor's view records: what `Monitor` answers, rendered alike by the CLI and the web.

Each record is a frozen, slotted dataclass with typed fields; `to_json()` maps it to the
catalogue's JSON in one explicit place, so the `--json` output and `/api/...` answers do not
depend on the field names. JSON keys are snake_case (`last_ping`, `waiting_on`); the tables
show the same items with spaces (`items()`: "last ping", "waiting on").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from jobq.monitor.render import View, json_key, to_jsonable


@dataclass(frozen=True, slots=True)
class AgentView(View):
    """An agent of a dispatcher with the jobs it holds now (`held`: assigned, active or
    waiting on callbacks; `waiting`: active jobs waiting on the job they returned, which run
    on no thread and are not in `held` or `active`)."""

    queue: str
    name: str
    size: int
    held: int
    active: int
    filter: str | None
    waiting: int = 0

    def load(self) -> dict[str, Any]:
        """The catalogue's keys of an agent's load, without its queue and name."""
        return {
            "size": self.size,
            "len": self.held,
            "active": self.active,
            "waiting": self.waiting,
            "filter": self.filter,
        }

    def to_json(self) -> Any:
        return to_jsonable({"queue": self.queue, "name": self.name, **self.load()})


@dataclass(frozen=True, slots=True)
class DispatcherView(View):
    """A dispatcher record as of `now`: liveness, last ping and its agents with their load."""

    uuid: str
    host: str
    pid: int
    started: dt.datetime
    activated: dt.datetime | None
    deactivated: dt.datetime | None
    last_ping: dt.datetime | None
    since_ping: dt.timedelta | None
    dead: bool
    state: str  # alive, dead or deactivated
    ping_interval: dt.timedelta
    death_interval: dt.timedelta
    agents: tuple[AgentView, ...]

    def _fields(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "host": self.host,
            "pid": self.pid,
            "started": self.started,
            "activated": self.activated,
            "deactivated": self.deactivated,
            "last_ping": self.last_ping,
            "since_ping": self.since_ping,
            "dead": self.dead,
            "state": self.state,
            "ping_interval": self.ping_interval,
            "ping_death_interval": self.death_interval,
        }

    def to_json(self) -> Any:
        return to_jsonable({**self._fields(), "agents": [a.to_json() for a in self.agents]})

    def queue_json(self) -> Any:
        """As listed under a queue by `status`: no uuid (it is the key), agents by name."""
        fields = self._fields()
        del fields["uuid"]
        return to_jsonable({**fields, "agents": {a.name: a.load() for a in self.agents}})


@dataclass(frozen=True, slots=True)
class QueueView(View):
    """A queue's counts and the activated dispatchers with agents for it."""

    name: str
    paused: bool
    pending: int
    due: int
    assigned: int
    active: int
    callbacks: int
    succeeded: int
    failed: int
    dispatchers: tuple[DispatcherView, ...]
    rate_limits: tuple[RateLimitView, ...] = ()

    @property
    def capacity(self) -> int:
        """The summed sizes of the agents serving this queue."""
        return sum(a.size for d in self.dispatchers for a in d.agents)

    def dispatcher(self, uuid: str) -> DispatcherView:
        """The dispatcher `uuid` among this queue's; KeyError if it has no agent here."""
        for d in self.dispatchers:
            if d.uuid == uuid:
                return d
        raise KeyError(uuid)

    def to_json(self) -> Any:
        return to_jsonable(
            {
                "len": self.pending,
                "due": self.due,
                "paused": self.paused,
                "assigned": self.assigned,
                "active": self.active,
                "callbacks": self.callbacks,
                "succeeded": self.succeeded,
                "failed": self.failed,
                "dispatchers": {d.uuid: d.queue_json() for d in self.dispatchers},
                "rate_limits": {r.name: r.queue_json() for r in self.rate_limits},
            }
        )


@dataclass(frozen=True, slots=True)
class StatusView(View):
    """The queues that `status` selected, in the store's order."""

    queues: tuple[QueueView, ...]

    def queue(self, name: str) -> QueueView:
        """The queue `name`; KeyError if it was not selected."""
        for q in self.queues:
            if q.name == name:
                return q
        raise KeyError(name)

    def to_json(self) -> Any:
        return {q.name: q.to_json() for q in self.queues}


@dataclass(frozen=True, slots=True)
class TimedJob(View):
    """A duration and the job it belongs to (a longest or shortest wait or active time)."""

    duration: dt.timedelta
    job_id: int

    def to_json(self) -> Any:
        return [to_jsonable(self.duration), self.job_id]


@dataclass(frozen=True, slots=True)
class JobStats(View):
    """Counts by state and the longest / shortest wait and active time."""

    counts: dict[str, int]
    longest_wait: TimedJob | None
    shortest_wait: TimedJob | None
    longest_active: TimedJob | None
    shortest_active: TimedJob | None

    def items(self) -> list[tuple[str, int | TimedJob | None]]:
        """(display key, value) in the catalogue's order: the counts, then the extremes."""
        return [
            *self.counts.items(),
            ("longest wait", self.longest_wait),
            ("shortest wait", self.shortest_wait),
            ("longest active", self.longest_active),
            ("shortest active", self.shortest_active),
        ]

    def to_json(self) -> Any:
        return to_jsonable({json_key(k): v for k, v in self.items()})


@dataclass(frozen=True, slots=True)
class JobRow(View):
    """One line of a jobs listing: the job and its wait and active time as of `now`."""

    id: int
    status: str
    failed: bool
    queue: str
    agent: str | None
    call: str
    begin_after: dt.datetime
    priority: int
    wait: dt.timedelta  # negative for a job scheduled later
    active: dt.timedelta | None
    error: str | None = None  # a failed job's `Type: message`

    def to_json(self) -> Any:
        return self.id


@dataclass(frozen=True, slots=True)
class JobSummary(View):
    """The catalogue's job summary: identity, call, times, wait / active, outcome (`result`:
    the result's repr once done, or the brief traceback of a failure). `retries` / `retried`:
    the retries `put(..., retries=N)` allows and those had so far; `next_run`: when a pending
    job is due; `time_limit`: its own `put(..., timeout=...)` (None: none, or its worker's
    `job_timeout`); `priority`: its `put(..., priority=N)`, higher first among due
    jobs. `unique_key` / `unique_while`: the key it was put with and the states it
    holds it in ("pending" or "pending,active"; None: put with `unique_for` only).
    `keep_result` / `expires`: how long a job put with keep_result is kept once
    completed, and when that runs out (retention prunes it then)."""

    id: int
    call: str
    status: str
    queue: str
    priority: int
    agent: str | None
    dispatcher: str | None
    attempt: int
    parent: int | None
    waiting_on: int | None
    callbacks: tuple[int, ...]
    quota_names: tuple[str, ...]
    unique_key: str | None
    unique_while: str | None
    annotations: dict[str, Any]
    progress: float | None
    retry_data: dict[str, Any]
    retry_policy: str | None
    retries: int | None
    retried: int
    next_run: dt.datetime | None
    created: dt.datetime
    begin_after: dt.datetime
    begin_by: dt.timedelta | None
    time_limit: dt.timedelta | None
    assigned: dt.datetime | None
    active_start: dt.datetime | None
    active_end: dt.datetime | None
    callbacks_end: dt.datetime | None
    wait: dt.timedelta
    active: dt.timedelta | None
    failed: bool
    result: str | None
    rate_limits: tuple[str, ...] = ()
    keep_result: dt.timedelta | None = None
    expires_at: dt.datetime | None = None

    def items(self) -> list[tuple[str, Any]]:
        """(display key, value) in the catalogue's order, as the tables and the JSON show."""
        return [
            ("id", self.id),
            ("repr", self.call),
            ("call", self.call),
            ("status", self.status),
            ("queue", self.queue),
            ("priority", self.priority),
            ("agent", self.agent),
            ("dispatcher", self.dispatcher),
            ("attempt", self.attempt),
            ("retries", self.retries),
            ("retried", self.retried),
            ("next run", self.next_run),
            ("parent", self.parent),
            ("waiting on", self.waiting_on),
            ("callbacks", list(self.callbacks)),
            ("quota names", list(self.quota_names)),
            ("rate limits", list(self.rate_limits)),
            ("unique key", self.unique_key),
            ("unique while", self.unique_while),
            ("annotations", self.annotations),
            ("progress", self.progress),
            ("retry data", self.retry_data),
            ("retry policy", self.retry_policy),
            ("created", self.created),
            ("begin after", self.begin_after),
            ("begin by", self.begin_by),
            ("time limit", self.time_limit),
            ("assigned", self.assigned),
            ("active start", self.active_start),
            ("active end", self.active_end),
            ("initial callbacks end", self.callbacks_end),
            ("keep result", self.keep_result),
            ("expires", self.expires_at),
            ("wait", self.wait),
            ("active", self.active),
            ("failed", self.failed),
            ("result", self.result),
        ]

    def to_json(self) -> Any:
        return to_jsonable({json_key(k): v for k, v in self.items()})


@dataclass(frozen=True, slots=True)
class TreeNode(View):
    """A job and its callbacks, recursively (to a depth)."""

    id: int
    call: str
    status: str
    failed: bool
    waiting_on: int | None
    callbacks: tuple[TreeNode, ...]

    def to_json(self) -> Any:
        return {
            "id": self.id,
            "call": self.call,
            "status": self.status,
            "failed": self.failed,
            "waiting_on": self.waiting_on,
            "callbacks": [c.to_json() for c in self.callbacks],
        }


@dataclass(frozen=True, slots=True)
class QuotaView(View):
    """A quota of a queue and how many jobs hold one of its slots now."""

    queue: str
    name: str
    size: int
    held: int

    def items(self) -> list[tuple[str, Any]]:
        return [
            ("queue", self.queue),
            ("name", self.name),
            ("size", self.size),
            ("held", self.held),
        ]

    def to_json(self) -> Any:
        return dict(self.items())


@dataclass(frozen=True, slots=True)
class RateLimitView(View):
    """A rate limit of a queue now: `used` claims of its `limit` in the last `per`, the
    `waiting` pending jobs naming it, and when its window frees a claim if none is left."""

    queue: str
    name: str
    limit: int
    per: dt.timedelta
    used: int
    waiting: int
    frees_at: dt.datetime | None

    def queue_json(self) -> Any:
        """As under its queue in `status`: without the queue's name."""
        return to_jsonable(
            {
                "limit": self.limit,
                "per": self.per,
                "used": self.used,
                "waiting": self.waiting,
                "frees_at": self.frees_at,
            }
        )

    def to_json(self) -> Any:
        return {"queue": self.queue, "name": self.name, **self.queue_json()}


@dataclass(frozen=True, slots=True)
class BulkResult(View):
    """What a bulk action (`cancel --all-pending`, `retry --all-failed`) selected, did and
    skipped (job ids); `new`: the ids of the retried copies."""

    selected: tuple[int, ...]
    done: tuple[int, ...] = ()
    skipped: tuple[int, ...] = ()
    new: tuple[int, ...] = ()

    def to_json(self) -> Any:
        return {
            "selected": list(self.selected),
            "done": list(self.done),
            "skipped": list(self.skipped),
            "new": list(self.new),
        }
