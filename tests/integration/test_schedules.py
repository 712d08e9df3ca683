"""Schedules on both engines: the API (create, replace, list, pause, resume, remove), bad
input refused at the call with nothing stored, missed-tick policies and daylight-saving nights
with a MovableClock, and racing dispatchers' loops putting one job per tick."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from jobfuncs import add, calls, record_call
from worker_helpers import execute, wait_until

import jobq
from jobq.testing import MovableClock
from jobq.worker.schedules import Schedules

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
START = dt.datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


def scheduled_jobs(db: jobq.Database, name: str) -> list[tuple[dt.datetime, jobq.Job]]:
    """The ticks on record for `name`, each with its job, in order."""
    return [(tick, db.get_job(job_id)) for tick, job_id in db.store.schedule_ticks(name) if job_id]


def test_a_schedule_is_stored_listed_replaced_paused_and_removed(
    clock_db: jobq.Database, clock: MovableClock
) -> None:
    made = clock_db.schedule(
        "nightly-report", "0 3 * * *", jobq.Job(add, 1, 2), timezone="Europe/Berlin",
        queue="reports",
    )  # fmt: skip
    assert made.next_run == dt.datetime(2026, 1, 6, 2, 0, tzinfo=UTC)  # 03:00 CET
    assert (made.queue, made.missed, made.paused, made.last_run) == ("reports", "skip", False, None)
    assert made.call_repr == "jobfuncs.add(1, 2)"
    assert "reports" in {q for q, *_ in execute(clock_db.url or "", "SELECT name FROM jobq_queues")}
    replaced = clock_db.schedule("nightly-report", "*/15 * * * *", add, missed="all", catch_up=3)
    assert replaced.next_run == dt.datetime(2026, 1, 5, 12, 15, tzinfo=UTC)
    assert (replaced.timezone, replaced.queue, replaced.missed, replaced.catch_up) == (
        "UTC", "", "all", 3,
    )  # fmt: skip
    clock_db.schedule("b-hourly", "0 * * * *", add)
    assert [s.name for s in clock_db.schedules()] == ["b-hourly", "nightly-report"]

    paused = clock_db.pause_schedule("b-hourly")
    assert paused.paused and paused.next_run is None
    assert clock_db.schedule("b-hourly", "30 * * * *", add).paused  # replacing keeps the pause
    clock.set(START + dt.timedelta(hours=3, minutes=5))
    resumed = clock_db.resume_schedule("b-hourly")
    assert not resumed.paused and resumed.next_run == START + dt.timedelta(hours=3, minutes=30)

    clock_db.unschedule("nightly-report")
    assert [s.name for s in clock_db.schedules()] == ["b-hourly"]
    for call in (clock_db.unschedule, clock_db.pause_schedule, clock_db.get_schedule):
        with pytest.raises(jobq.ScheduleNotFound, match="no schedule named 'nightly-report'"):
            call("nightly-report")


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (("every", "0 25 * * *", add), {}, jobq.ConfigError, "bad cron expression '0 25"),
        (("every", "0 3 30 2 *", add), {}, jobq.ConfigError, "'0 3 30 2 *' (Bad day-of-month)"),
        (("every", "0 3 * * *", add), {"timezone": "Europe/Berln"}, jobq.ConfigError,
         "unknown time zone 'Europe/Berln'"),
        (("every", "0 3 * * *", add), {"missed": "later"}, jobq.ConfigError,
         "missed must be one of skip, once, all; got 'later'"),
        (("every", "0 3 * * *", add), {"missed": "all", "catch_up": -1}, jobq.ConfigError,
         "catch_up must be between 1 and 10000, got -1"),
        (("every", "0 3 * * *", lambda: 1), {}, jobq.EncodingError, "cannot store lambda"),
        (("every", "0 3 * * *", jobq.Job(add, threading.Lock(), 1)), {}, jobq.EncodingError,
         "lock"),
        (("every", "0 3 * * *", 42), {}, jobq.ConfigError, "must be a jobq.Job or a callable"),
        (("", "0 3 * * *", add), {}, jobq.ConfigError, "schedule name must be a non-empty"),
        (("every", "0 3 * * *", add), {"queue": 3}, jobq.ConfigError, "queue must be"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_at_the_call_and_changes_nothing(
    db: jobq.Database, args: tuple, kwargs: dict, error: type[Exception], message: str
) -> None:
    before = db.schedule("every", "*/5 * * * *", jobq.Job(add, 1, 1))
    with pytest.raises(error, match=re.escape(message)):
        db.schedule(*args, **kwargs)
    assert db.schedules() == [before]


def test_missed_ticks_follow_each_schedules_policy(
    clock_db: jobq.Database, clock: MovableClock
) -> None:
    for missed in ("skip", "once", "all"):
        clock_db.schedule(missed, "0 * * * *", jobq.Job(add, 0, 0), missed=missed, catch_up=3)
    loop = Schedules(clock_db.store)
    # No worker ran for five hours and a half: ticks 13:00 ... 17:00 were missed.
    now = clock.set(START + dt.timedelta(hours=5, minutes=30))
    assert loop.tick(now) == 0 + 1 + 3
    assert scheduled_jobs(clock_db, "skip") == []
    (once_tick, once_job), = scheduled_jobs(clock_db, "once")  # fmt: skip
    assert once_tick == START + dt.timedelta(hours=5) and once_job.begin_after == once_tick
    assert [t for t, _ in scheduled_jobs(clock_db, "all")] == [
        START + dt.timedelta(hours=h) for h in (3, 4, 5)
    ]
    for name in ("skip", "once", "all"):
        schedule = clock_db.get_schedule(name)
        assert schedule.next_run == START + dt.timedelta(hours=6)
    assert clock_db.get_schedule("all").last_run == START + dt.timedelta(hours=5)
    # A worker that is there on time runs each tick under every policy.
    now = clock.set(START + dt.timedelta(hours=6, seconds=1))
    assert loop.tick(now) == 3
    for name in ("skip", "once", "all"):
        tick, job = scheduled_jobs(clock_db, name)[-1]
        assert tick == START + dt.timedelta(hours=6) and job.status == "pending"
        assert clock_db.get_schedule(name).last_job_id == job.id
    assert loop.tick(now) == 0


def _walk(loop: Schedules, clock: MovableClock, until: dt.datetime, step: dt.timedelta) -> None:
    while clock.now() < until:
        loop.tick(clock.advance(step))


@pytest.mark.parametrize(
    ("night", "expected"),
    [
        # Spring forward (2026-03-29): 02:30 does not exist; the tick runs at 03:00 CEST.
        (dt.date(2026, 3, 29), ["2026-03-28 02:30+01:00", "2026-03-29 03:00+02:00",
                                "2026-03-30 02:30+02:00"]),
        # Fall back (2026-10-25): 02:30 happens twice; the tick runs at the first one only.
        (dt.date(2026, 10, 25), ["2026-10-24 02:30+02:00", "2026-10-25 02:30+02:00",
                                 "2026-10-26 02:30+01:00"]),
    ],
)  # fmt: skip
def test_a_daily_schedule_runs_once_a_day_across_daylight_saving_changes(
    clock_db: jobq.Database, clock: MovableClock, night: dt.date, expected: list[str]
) -> None:
    start = dt.datetime.combine(night - dt.timedelta(days=2), dt.time(12), BERLIN)
    clock.set(start)
    clock_db.schedule("dst", "30 2 * * *", jobq.Job(add, 1, 1), timezone="Europe/Berlin")
    loop = Schedules(clock_db.store)
    # A worker on time through the nights (every 5 s from 00:00 to 04:00 local, both
    # 02:30s of a fall-back night included), and hourly in between.
    for day in range(3):
        night_start = dt.datetime.combine(
            night + dt.timedelta(days=day - 1), dt.time(0), BERLIN
        ).astimezone(UTC)
        _walk(loop, clock, night_start, dt.timedelta(hours=1))
        _walk(loop, clock, night_start + dt.timedelta(hours=4), dt.timedelta(seconds=5))
    runs = [job.begin_after.astimezone(BERLIN) for _, job in scheduled_jobs(clock_db, "dst")]
    assert [r.isoformat(" ", timespec="minutes") for r in runs] == expected


def test_a_paused_schedule_puts_nothing_and_resumes_from_the_next_tick(
    clock_db: jobq.Database, clock: MovableClock
) -> None:
    clock_db.schedule("p", "*/10 * * * *", jobq.Job(add, 1, 1), missed="all", catch_up=100)
    clock_db.pause_schedule("p")
    loop = Schedules(clock_db.store)
    loop.tick(clock.advance(hours=1))
    assert scheduled_jobs(clock_db, "p") == []
    clock_db.resume_schedule("p")
    loop.tick(clock.advance(minutes=15))
    assert [t for t, _ in scheduled_jobs(clock_db, "p")] == [START + dt.timedelta(minutes=70)]


def test_a_loop_holding_a_stale_read_puts_nothing(
    clock_db: jobq.Database, clock: MovableClock
) -> None:
    clock_db.schedule("s", "* * * * *", jobq.Job(add, 1, 1))
    stale = clock_db.store.get_schedule("s")
    assert stale is not None and stale.next_tick is not None
    tick = stale.next_tick
    now = clock.set(tick + dt.timedelta(seconds=1))
    assert Schedules(clock_db.store).tick(now) == 1
    # A second loop read the row before the first one fired: its advance finds it moved.
    assert clock_db.store.fire_schedule(stale, [tick], tick + dt.timedelta(minutes=1), now) is None
    # Changed meanwhile (a new revision), even the same next tick is refused.
    clock_db.schedule("s", "* * * * *", jobq.Job(add, 2, 2))
    current = clock_db.store.get_schedule("s")
    assert current is not None
    old = current.__class__(**{**_fields(current), "revision": current.revision - 1})
    assert clock_db.store.fire_schedule(old, [tick], None, now) is None
    # And a tick enqueued before is refused by the key even from a current read.
    assert clock_db.store.fire_schedule(current, [tick], current.next_tick, now) == []
    assert len(scheduled_jobs(clock_db, "s")) == 1


def _fields(record: object) -> dict:
    return {name: getattr(record, name) for name in record.__slots__}  # type: ignore[attr-defined]


@pytest.fixture
def racers(db_url: str, clock: MovableClock) -> Iterator[list[jobq.Database]]:
    databases = [jobq.connect(db_url, clock=clock) for _ in range(4)]
    yield databases
    for database in databases:
        database.close()


def test_racing_loops_put_exactly_one_job_per_tick(
    racers: list[jobq.Database], clock: MovableClock
) -> None:
    """Four dispatchers' loops, each on its own connections, tick at the same moments."""
    racers[0].schedule("race", "* * * * * *", jobq.Job(add, 1, 1), missed="all", catch_up=100)
    rounds = 30
    barrier = threading.Barrier(len(racers), action=lambda: clock.advance(seconds=1))
    made: list[int] = []
    errors: list[BaseException] = []

    def race(database: jobq.Database) -> None:
        loop = Schedules(database.store)
        try:
            for _ in range(rounds):
                barrier.wait(timeout=30)
                loop.next_due = None  # every loop reads every round
                made.append(loop.tick(clock.now()))
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=race, args=(d,)) for d in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    ticks = racers[0].store.schedule_ticks("race")
    expected = [START + dt.timedelta(seconds=s) for s in range(1, rounds + 1)]
    assert [t for t, _ in ticks] == expected
    assert sum(made) == rounds
    jobs = execute(racers[0].url or "", "SELECT count(*) FROM jobq_jobs")
    assert jobs[0][0] == rounds


def test_a_worker_runs_the_jobs_of_a_schedule(db: jobq.Database) -> None:
    token = f"sched-{db.engine}-{id(db)}"
    db.schedule("every-second", "* * * * * *", jobq.Job(record_call, token), queue="ticks")
    worker = db.worker(queues=["ticks"], poll_interval=0.1).start()
    try:
        wait_until(lambda: len(scheduled_jobs(db, "every-second")) >= 2, timeout=20)
        first = scheduled_jobs(db, "every-second")[0][1]
        assert first.wait(timeout=20) is None
    finally:
        worker.stop(grace=10)
    record = db.store.get(first.id)
    assert record is not None and record.queue == "ticks" and record.status == "completed"
    assert calls(token)  # the job ran
    assert db.get_schedule("every-second").last_run is not None


def test_declaring_the_same_schedule_again_keeps_its_missed_ticks(
    clock_db: jobq.Database, clock: MovableClock
) -> None:
    """An application declares its schedules at every start: an unchanged one keeps its next
    tick, so the ticks missed while it was down still follow its policy."""
    declare = lambda: clock_db.schedule(  # noqa: E731
        "hourly", "0 * * * *", jobq.Job(add, 1, 2), missed="all", catch_up=5
    )
    assert declare().next_run == START + dt.timedelta(hours=1)
    clock.advance(hours=3, minutes=10)
    assert declare().next_run == START + dt.timedelta(hours=1)  # unchanged: kept
    assert Schedules(clock_db.store).tick(clock.now()) == 3
    changed = clock_db.schedule("hourly", "0 * * * *", jobq.Job(add, 1, 3), missed="all")
    assert changed.next_run == START + dt.timedelta(hours=4)  # a new definition starts over
