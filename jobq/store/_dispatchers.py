"""The store's records of dispatchers, their agents and the queues' quotas, and the jobs
dispatchers hold: liveness (activate, ping, sweep the dead), recovery reads (orphans, a
dispatcher's jobs, releasing a claim) and run-time configuration.

Functions of `SqlStore`'s operations, each over the engine's `Driver`.
"""

from __future__ import annotations

import datetime as dt
import json

from jobq.store._rows import dispatcher_record, job_records
from jobq.store.base import AgentRecord, DispatcherRecord, JobRecord, is_dead
from jobq.store.driver import Driver


# -- liveness ----------------------------------------------------------------------------------
# Pings, activation and the judging of the dead share one clock. `now=None` asks for the
# database's: the server's own where it has one (`Driver.has_server_clock`: a NULL time in the
# query means clock_timestamp()), so that machines whose clocks differ never judge each other
# dead by skew; otherwise this machine's. A caller with a clock of its own (tests) passes it.
def _stamp(driver: Driver, now: dt.datetime | None) -> object:
    if now is not None:
        return driver.to_db_time(now)
    return None if driver.has_server_clock else driver.to_db_time(dt.datetime.now(dt.UTC))


def liveness_now(driver: Driver) -> dt.datetime:
    """The database's time (see `_stamp`)."""
    if not driver.has_server_clock:
        return dt.datetime.now(dt.UTC)
    with driver.read() as ex:
        row = ex.one("server_now")
    assert row is not None
    return driver.from_db_time(row["now"])


def get_dispatcher(driver: Driver, uuid: str) -> DispatcherRecord | None:
    with driver.read() as ex:
        row = ex.one("get_dispatcher", uuid=uuid)
    return None if row is None else dispatcher_record(driver, row)


def activate_dispatcher(
    driver: Driver,
    uuid: str,
    host: str,
    pid: int,
    ping_interval: float,
    death_interval: float,
    now: dt.datetime | None,
) -> tuple[bool, DispatcherRecord | None]:
    """Activate `uuid` unless its record is activated and alive (another process with the
    same UUID?). Returns (activated, the record found before)."""
    with driver.transaction() as ex:
        row = ex.one("lock_dispatcher", uuid=uuid)
        previous = None if row is None else dispatcher_record(driver, row)
        if previous is not None and previous.activated is not None:
            judged_at = now if now is not None else liveness_now(driver)
            if not is_dead(previous, judged_at):
                return False, previous
        ex.run(
            "register_dispatcher",
            uuid=uuid,
            host=host,
            pid=pid,
            ping_interval=ping_interval,
            death_interval=death_interval,
            now=_stamp(driver, now),
        )
        return True, previous


def ping(driver: Driver, uuid: str, now: dt.datetime | None) -> bool:
    """Record a ping; False if the record was deactivated (this dispatcher presumed dead)."""
    with driver.transaction() as ex:
        return ex.run("ping_dispatcher", uuid=uuid, now=_stamp(driver, now)) == 1


def reactivate_dispatcher(driver: Driver, uuid: str, now: dt.datetime | None) -> None:
    with driver.transaction() as ex:
        ex.run("reactivate_dispatcher", uuid=uuid, now=_stamp(driver, now))


def deactivate_dispatcher(driver: Driver, uuid: str, now: dt.datetime | None) -> None:
    with driver.transaction() as ex:
        ex.run("deactivate_dispatcher", uuid=uuid, now=_stamp(driver, now))


def deactivate_dead(
    driver: Driver, now: dt.datetime | None, in_reach_for: float | None = None
) -> list[str]:
    """Deactivate every dispatcher whose ping is older than its death interval; returns
    the UUIDs this call deactivated (a concurrent sweeper gets the others). With
    `in_reach_for` (seconds the judge's own unbroken run of pings has lasted, by its own
    clock), only those whose death interval is no longer: the judge saw them silent while
    it could ping itself. Silence is judged in the liveness clock (`_stamp`)."""
    at = _stamp(driver, now)
    with driver.read() as ex:
        rows = ex.all("dead_dispatchers", now=at)
    candidates = [
        r["uuid"] for r in rows if in_reach_for is None or r["death_interval"] <= in_reach_for
    ]
    won: list[str] = []
    for uuid in candidates:
        with driver.transaction() as ex:
            if ex.run("deactivate_if_dead", uuid=uuid, now=at) == 1:
                won.append(uuid)
    return won


def set_dispatcher_intervals(
    driver: Driver, uuid: str, ping_interval: float, death_interval: float
) -> bool:
    with driver.transaction() as ex:
        n = ex.run(
            "set_intervals", uuid=uuid, ping_interval=ping_interval, death_interval=death_interval
        )
        return n == 1


# -- recovery ----------------------------------------------------------------------------------
def orphans(driver: Driver, limit: int) -> list[JobRecord]:
    """Jobs held by dispatchers that are gone."""
    with driver.read() as ex:
        return job_records(driver, ex.all("orphan_jobs", limit=limit))


def dispatcher_jobs(driver: Driver, uuid: str) -> list[JobRecord]:
    with driver.read() as ex:
        return job_records(driver, ex.all("dispatcher_jobs", uuid=uuid))


def release(driver: Driver, job_id: int, attempt: int, dispatcher: str) -> bool:
    """Hand a held job back to its queue, fenced on the attempt."""
    with driver.transaction() as ex:
        n = ex.run("release_job", id=job_id, attempt=attempt, dispatcher=dispatcher)
        if n:
            row = ex.one("lock_job", id=job_id)
            assert row is not None
            driver.notify(ex, row["queue"])
        return n == 1


# -- agents ------------------------------------------------------------------------------------
def set_agent(
    driver: Driver,
    uuid: str,
    queue: str,
    name: str,
    size: int,
    filter: str | None,
    filter_seal: str | None = None,
) -> None:
    with driver.transaction() as ex:
        ex.run(
            "set_agent",
            uuid=uuid,
            queue=queue,
            name=name,
            size=size,
            filter=filter,
            filter_seal=filter_seal,
        )


def remove_agent(driver: Driver, uuid: str, queue: str, name: str) -> bool:
    with driver.transaction() as ex:
        return ex.run("remove_agent", uuid=uuid, queue=queue, name=name) == 1


def clear_agents(driver: Driver, uuid: str) -> None:
    with driver.transaction() as ex:
        ex.run("clear_agents", uuid=uuid)


def agents(driver: Driver, uuid: str) -> list[AgentRecord]:
    with driver.read() as ex:
        return [AgentRecord(**r) for r in ex.all("list_agents", uuid=uuid)]


# -- quotas (enforced by `_claim`) -------------------------------------------------------------
def queue_quotas(driver: Driver, queue: str) -> list[tuple[str, int]]:
    with driver.read() as ex:
        return [(r["name"], int(r["size"])) for r in ex.all("queue_quotas", queue=queue)]


def create_quota(driver: Driver, queue: str, name: str, size: int) -> bool:
    """Create quota `name` of `queue`; False if it exists already."""
    with driver.transaction() as ex:
        ex.one("lock_queue_quotas", queue=queue)  # not while a claim of the queue runs
        return ex.run("create_quota", queue=queue, name=name, size=size) == 1


def resize_quota(driver: Driver, queue: str, name: str, size: int) -> bool:
    with driver.transaction() as ex:
        changed = ex.run("resize_quota", queue=queue, name=name, size=size) == 1
        if changed:
            driver.notify(ex, queue)  # a larger quota may let waiting jobs go
        return changed


def remove_quota(driver: Driver, queue: str, name: str) -> bool:
    with driver.transaction() as ex:
        removed = ex.run("remove_quota", queue=queue, name=name) == 1
        if removed:
            driver.notify(ex, queue)  # jobs naming it are no longer held back
        return removed


def quota_holders(driver: Driver, queue: str, name: str) -> list[JobRecord]:
    """The jobs holding a slot of quota `name` of `queue` now."""
    with driver.read() as ex:
        rows = ex.all("quota_holders", queue=queue)
    return job_records(driver, [r for r in rows if name in json.loads(r["quota_names"])])
