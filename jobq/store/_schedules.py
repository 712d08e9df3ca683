"""Schedules in the database: saving, listing, pausing and removing them, the due ones, and
`fire_schedule`, which enqueues a schedule's ticks exactly once.

A worker that fires a schedule first moves its `next_tick` on, only if the row still has the
value and revision it read: of several workers racing, one changes the row and the others
change nothing and give up. In the same transaction each tick is inserted into
`jobq_schedule_ticks`, whose primary key (schedule, tick) refuses a tick enqueued before, and
only a tick inserted there puts its job. So a tick has one job whatever the number of workers,
their crashes (a transaction cut short leaves no tick and no job) and their clocks.

Functions of `SqlStore`'s operations, each over the engine's `Driver`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from jobq.store.base import NewJob, ScheduleRecord
from jobq.store.driver import Driver, Row


def _record(driver: Driver, row: Row) -> ScheduleRecord:
    d = driver.from_db_time
    return ScheduleRecord(
        name=row["name"],
        cron=row["cron"],
        timezone=row["timezone"],
        queue=row["queue"],
        missed=row["missed"],
        catch_up=int(row["catch_up"]),
        job_class=row["job_class"],
        call=bytes(row["call"]),
        call_repr=row["call_repr"],
        retry_policy=row["retry_policy"],
        failure_log_level=row["failure_log_level"],
        paused=bool(row["paused"]),
        next_tick=None if row["next_tick"] is None else d(row["next_tick"]),
        last_tick=None if row["last_tick"] is None else d(row["last_tick"]),
        last_job_id=row["last_job_id"],
        revision=int(row["revision"]),
        created=d(row["created"]),
        updated=d(row["updated"]),
        priority=row["priority"],
    )


def _time(driver: Driver, value: dt.datetime | None) -> object:
    return None if value is None else driver.to_db_time(value)


def save_schedule(driver: Driver, s: ScheduleRecord) -> None:
    """Create the schedule or replace its definition and next tick (its pause is kept)."""
    with driver.transaction() as ex:
        ex.run(
            "upsert_schedule",
            name=s.name,
            cron=s.cron,
            timezone=s.timezone,
            queue=s.queue,
            missed=s.missed,
            catch_up=s.catch_up,
            job_class=s.job_class,
            call=s.call,
            call_repr=s.call_repr,
            retry_policy=s.retry_policy,
            failure_log_level=s.failure_log_level,
            next_tick=_time(driver, s.next_tick),
            now=driver.to_db_time(s.updated),
            priority=s.priority,
        )


def get_schedule(driver: Driver, name: str) -> ScheduleRecord | None:
    with driver.read() as ex:
        row = ex.one("get_schedule", name=name)
    return None if row is None else _record(driver, row)


def schedules(driver: Driver) -> list[ScheduleRecord]:
    with driver.read() as ex:
        rows = ex.all("list_schedules")
    return [_record(driver, row) for row in rows]


def remove_schedule(driver: Driver, name: str) -> bool:
    """Delete the schedule and its ticks' records (its jobs stay); False if there was none."""
    with driver.transaction() as ex:
        removed = ex.run("delete_schedule", name=name)
        ex.run("delete_schedule_ticks", name=name)
    return removed == 1


def set_schedule_paused(
    driver: Driver, name: str, paused: bool, next_tick: dt.datetime | None, now: dt.datetime
) -> bool:
    with driver.transaction() as ex:
        n = ex.run(
            "set_schedule_paused",
            name=name,
            paused=paused,
            next_tick=_time(driver, next_tick),
            now=driver.to_db_time(now),
        )
    return n == 1


def due_schedules(driver: Driver, now: dt.datetime, limit: int) -> list[ScheduleRecord]:
    with driver.read() as ex:
        rows = ex.all("due_schedules", now=driver.to_db_time(now), limit=limit)
    return [_record(driver, row) for row in rows]


def earliest_schedule_tick(driver: Driver) -> dt.datetime | None:
    with driver.read() as ex:
        row = ex.one("earliest_schedule_tick")
    value = None if row is None else row["next_tick"]
    return None if value is None else driver.from_db_time(value)


def fire_schedule(
    driver: Driver,
    s: ScheduleRecord,
    ticks: Sequence[dt.datetime],
    next_tick: dt.datetime | None,
    now: dt.datetime,
    put_by: str | None,
) -> list[tuple[dt.datetime, int]] | None:
    """Enqueue one job for each of `ticks` not enqueued before and move the schedule's next
    tick to `next_tick`, in one transaction; the (tick, job id) pairs enqueued, or None if
    another worker (or a change of the schedule) moved it first, which changes nothing."""
    assert s.next_tick is not None
    with driver.transaction() as ex:
        moved = ex.run(
            "advance_schedule",
            name=s.name,
            revision=s.revision,
            expected=driver.to_db_time(s.next_tick),
            next_tick=_time(driver, next_tick),
            last_tick=_time(driver, ticks[-1] if ticks else None),
        )
        if moved != 1:
            return None
        made: list[tuple[dt.datetime, int]] = []
        stamp = driver.to_db_time(now)
        for tick in ticks:
            at = driver.to_db_time(tick)
            if not ex.run("insert_schedule_tick", schedule=s.name, tick=at, now=stamp):
                continue  # enqueued before: the key (schedule, tick) holds one job per tick
            job = NewJob(
                queue=s.queue,
                call=s.call,
                call_repr=s.call_repr,
                begin_after=tick,
                job_class=s.job_class,
                retry_policy=s.retry_policy,
                failure_log_level=s.failure_log_level,
                put_by=put_by,
                priority=s.priority,
            )
            job_id = driver.insert_job(ex, job, "pending", now)
            ex.run("set_schedule_tick_job", schedule=s.name, tick=at, job_id=job_id)
            made.append((tick, job_id))
        if made:
            ex.run("set_schedule_last_job", name=s.name, job_id=made[-1][1])
            driver.notify(ex, s.queue)
    return made


def schedule_ticks(driver: Driver, name: str) -> list[tuple[dt.datetime, int | None]]:
    """The enqueued ticks of a schedule still on record, in order, with their jobs' ids."""
    with driver.read() as ex:
        rows = ex.all("schedule_ticks", schedule=name)
    return [(driver.from_db_time(r["tick"]), r["job_id"]) for r in rows]


def prune_schedule_ticks(driver: Driver, before: dt.datetime) -> int:
    """Forget the records of ticks enqueued before `before`: a schedule's next tick only moves
    forward, so an old tick can no longer be offered (their jobs stay)."""
    with driver.transaction() as ex:
        return ex.run("prune_schedule_ticks", before=driver.to_db_time(before))
