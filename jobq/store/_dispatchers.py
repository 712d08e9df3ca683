"""The store's records of queues, dispatchers, agents and quotas, and the jobs dispatchers
hold (`store.base.Store`): liveness (activate, ping, sweep the dead), recovery reads
(orphans, a dispatcher's jobs, releasing a claim) and run-time configuration.

`SqlStore` inherits this mixin; it relies on the engine's `_read`, `_transaction`, `ts`,
`dt`, `_record` and `_notify`, and on the queries of `sql/<engine>/queries.sql`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from jobq.store.base import AgentRecord, DispatcherRecord, JobRecord, is_dead

if TYPE_CHECKING:
    from jobq.store._sql import Executor  # noqa: F401


class DispatchersMixin:
    """Queues, dispatchers, agents and quotas."""

    def ensure_queue(self, queue: str, now: dt.datetime) -> None:
        with self._transaction() as ex:
            ex.run("ensure_queue", queue=queue, now=self.ts(now))

    def get_dispatcher(self, uuid: str) -> DispatcherRecord | None:
        with self._read() as ex:
            row = ex.one("get_dispatcher", uuid=uuid)
        return None if row is None else self._dispatcher(row)

    def activate_dispatcher(
        self,
        uuid: str,
        host: str,
        pid: int,
        ping_interval: float,
        death_interval: float,
        now: dt.datetime,
    ) -> tuple[bool, DispatcherRecord | None]:
        """Activate `uuid` unless its record is activated and alive (another process with the
        same UUID?). Returns (activated, the record found before)."""
        with self._transaction() as ex:
            row = ex.one("lock_dispatcher", uuid=uuid)
            previous = None if row is None else self._dispatcher(row)
            if (
                previous is not None
                and previous.activated is not None
                and not is_dead(previous, now)
            ):
                return False, previous
            ex.run(
                "register_dispatcher",
                uuid=uuid,
                host=host,
                pid=pid,
                ping_interval=ping_interval,
                death_interval=death_interval,
                now=self.ts(now),
            )
            return True, previous

    def _dispatcher(self, row: dict[str, Any]) -> DispatcherRecord:
        for key in ("started", "last_ping", "activated", "deactivated"):
            row[key] = self.dt(row[key])
        return DispatcherRecord(**row)

    def ping(self, uuid: str, now: dt.datetime) -> bool:
        """Record a ping; False if the record was deactivated (this dispatcher presumed dead)."""
        with self._transaction() as ex:
            return ex.run("ping_dispatcher", uuid=uuid, now=self.ts(now)) == 1

    def reactivate_dispatcher(self, uuid: str, now: dt.datetime) -> None:
        with self._transaction() as ex:
            ex.run("reactivate_dispatcher", uuid=uuid, now=self.ts(now))

    def deactivate_dispatcher(self, uuid: str, now: dt.datetime) -> None:
        with self._transaction() as ex:
            ex.run("deactivate_dispatcher", uuid=uuid, now=self.ts(now))

    def deactivate_dead(self, now: dt.datetime) -> list[str]:
        """Deactivate every dispatcher whose ping is older than its death interval; returns
        the UUIDs this call deactivated (a concurrent sweeper gets the others)."""
        with self._read() as ex:
            candidates = [r["uuid"] for r in ex.all("dead_dispatchers", now=self.ts(now))]
        won: list[str] = []
        for uuid in candidates:
            with self._transaction() as ex:
                if ex.run("deactivate_if_dead", uuid=uuid, now=self.ts(now)) == 1:
                    won.append(uuid)
        return won

    def set_dispatcher_intervals(
        self, uuid: str, ping_interval: float, death_interval: float
    ) -> bool:
        with self._transaction() as ex:
            return (
                ex.run(
                    "set_intervals",
                    uuid=uuid,
                    ping_interval=ping_interval,
                    death_interval=death_interval,
                )
                == 1
            )

    def orphans(self, limit: int = 100) -> list[JobRecord]:
        with self._read() as ex:
            return [self._record(r) for r in ex.all("orphan_jobs", limit=limit)]

    def dispatcher_jobs(self, uuid: str) -> list[JobRecord]:
        with self._read() as ex:
            return [self._record(r) for r in ex.all("dispatcher_jobs", uuid=uuid)]

    def release(self, job_id: int, attempt: int, dispatcher: str) -> bool:
        with self._transaction() as ex:
            n = ex.run("release_job", id=job_id, attempt=attempt, dispatcher=dispatcher)
            if n:
                row = ex.one("lock_job", id=job_id)
                assert row is not None
                self._notify(ex, row["queue"])
            return n == 1

    def set_agent(self, uuid: str, queue: str, name: str, size: int, filter: str | None) -> None:
        with self._transaction() as ex:
            ex.run("set_agent", uuid=uuid, queue=queue, name=name, size=size, filter=filter)

    def remove_agent(self, uuid: str, queue: str, name: str) -> bool:
        with self._transaction() as ex:
            return ex.run("remove_agent", uuid=uuid, queue=queue, name=name) == 1

    # -- quotas (enforced by claim) ------------------------------------------------------------
    def queue_quotas(self, queue: str) -> list[tuple[str, int]]:
        with self._read() as ex:
            return [(r["name"], int(r["size"])) for r in ex.all("queue_quotas", queue=queue)]

    def create_quota(self, queue: str, name: str, size: int) -> bool:
        """Create quota `name` of `queue`; False if it exists already."""
        with self._transaction() as ex:
            ex.one("lock_queue_quotas", queue=queue)  # not while a claim of the queue runs
            return ex.run("create_quota", queue=queue, name=name, size=size) == 1

    def resize_quota(self, queue: str, name: str, size: int) -> bool:
        with self._transaction() as ex:
            changed = ex.run("resize_quota", queue=queue, name=name, size=size) == 1
            if changed:
                self._notify(ex, queue)  # a larger quota may let waiting jobs go
            return changed

    def remove_quota(self, queue: str, name: str) -> bool:
        with self._transaction() as ex:
            removed = ex.run("remove_quota", queue=queue, name=name) == 1
            if removed:
                self._notify(ex, queue)  # jobs naming it are no longer held back
            return removed

    def quota_holders(self, queue: str, name: str) -> list[JobRecord]:
        """The jobs holding a slot of quota `name` of `queue` now."""
        with self._read() as ex:
            rows = ex.all("quota_holders", queue=queue)
        return [self._record(r) for r in rows if name in json.loads(r["quota_names"])]

    def clear_agents(self, uuid: str) -> None:
        with self._transaction() as ex:
            ex.run("clear_agents", uuid=uuid)

    def agents(self, uuid: str) -> list[AgentRecord]:
        with self._read() as ex:
            return [AgentRecord(**r) for r in ex.all("list_agents", uuid=uuid)]
