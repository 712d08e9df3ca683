"""`jobq.model.schedule.plan`: which ticks a schedule owes at a moment, by its missed policy,
and the daylight-saving rule (cronsim's), without a database."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from jobq.errors import ConfigError
from jobq.model.schedule import ON_TIME, check_cron, check_missed, next_tick, plan, zone

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)


def test_on_time_ticks_run_under_every_policy() -> None:
    now = T0 + dt.timedelta(seconds=3, microseconds=500)
    for missed in ("skip", "once", "all"):
        owed = plan("* * * * * *", "UTC", T0, now, missed, 5)
        assert owed.ticks == tuple(T0 + dt.timedelta(seconds=s) for s in range(4))
        assert owed.next_tick == T0 + dt.timedelta(seconds=4)
        assert not owed.dropped


def test_missed_ticks_follow_the_policy() -> None:
    # A daily schedule whose worker was down for ten days.
    first = dt.datetime(2026, 1, 1, 3, tzinfo=UTC)
    now = dt.datetime(2026, 1, 11, 2, tzinfo=UTC)
    skip = plan("0 3 * * *", "UTC", first, now, "skip", 3)
    assert skip.ticks == () and skip.dropped
    assert skip.next_tick == dt.datetime(2026, 1, 11, 3, tzinfo=UTC)
    once = plan("0 3 * * *", "UTC", first, now, "once", 3)
    assert once.ticks == (dt.datetime(2026, 1, 10, 3, tzinfo=UTC),) and once.dropped
    every = plan("0 3 * * *", "UTC", first, now, "all", 3)
    assert every.ticks == tuple(dt.datetime(2026, 1, d, 3, tzinfo=UTC) for d in (8, 9, 10))
    everything = plan("0 3 * * *", "UTC", first, now, "all", 100)
    assert len(everything.ticks) == 10 and not everything.dropped
    assert everything.next_tick == skip.next_tick


def test_a_tick_up_to_on_time_late_is_on_time() -> None:
    late = T0 + ON_TIME
    assert plan("0 0 * * *", "UTC", T0, late, "skip", 1).ticks == (T0,)
    later = late + dt.timedelta(microseconds=1)
    assert plan("0 0 * * *", "UTC", T0, later, "skip", 1).ticks == ()


def test_a_week_of_missed_seconds_plans_only_what_it_keeps() -> None:
    now = T0 + dt.timedelta(days=7)
    owed = plan("* * * * * *", "UTC", T0, now, "all", 20)
    assert len(owed.ticks) == 20 + int(ON_TIME.total_seconds()) + 1
    assert owed.ticks[-1] == now and owed.next_tick == now + dt.timedelta(seconds=1)


def _daily_runs(start: dt.datetime, days: int) -> list[dt.datetime]:
    runs, after = [], start
    for _ in range(days):
        tick = next_tick("30 2 * * *", "Europe/Berlin", after)
        assert tick is not None
        runs.append(tick)
        after = tick
    return runs


def test_spring_forward_runs_once_after_the_gap() -> None:
    # 2026-03-29: Berlin's clocks jump from 02:00 to 03:00; 02:30 does not exist.
    runs = _daily_runs(dt.datetime(2026, 3, 27, 12, tzinfo=BERLIN), 4)
    local = [r.astimezone(BERLIN) for r in runs]
    assert [t.date().day for t in local] == [28, 29, 30, 31]
    assert local[1].replace(tzinfo=None) == dt.datetime(2026, 3, 29, 3, 0)
    assert [t.time() for t in (local[0], local[2], local[3])] == [dt.time(2, 30)] * 3


def test_fall_back_runs_once_at_the_first_occurrence() -> None:
    # 2026-10-25: 02:00-03:00 happens twice in Berlin; the schedule runs at the first 02:30.
    runs = _daily_runs(dt.datetime(2026, 10, 24, 12, tzinfo=BERLIN), 3)
    assert runs[0] == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST (+02:00)
    assert runs[1] == dt.datetime(2026, 10, 26, 1, 30, tzinfo=UTC)  # not 02:30 CET on the 25th
    assert [r.astimezone(BERLIN).time() for r in runs] == [dt.time(2, 30)] * 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check_cron("0 3 * *", "UTC", T0), "bad cron expression '0 3 * *'"),
        (lambda: check_cron("61 * * * *", "UTC", T0), "bad cron expression '61 * * * *'"),
        (lambda: check_cron(5, "UTC", T0), "must be a string"),
        (lambda: zone("Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (lambda: zone(""), "IANA zone name"),
        (lambda: check_missed("sometimes", 1), "missed must be one of skip, once, all"),
        (lambda: check_missed("all", 0), "catch_up must be between 1 and"),
        (lambda: check_missed("all", True), "catch_up must be an integer"),
    ],
)
def test_bad_input_names_the_value_and_the_rule(call: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("*", r"\*")):
        call()  # type: ignore[operator]


def test_fewer_missed_ticks_than_catch_up_all_run() -> None:
    first = dt.datetime(2026, 1, 5, 13, tzinfo=UTC)
    owed = plan("0 * * * *", "UTC", first, dt.datetime(2026, 1, 5, 15, 10, tzinfo=UTC), "all", 5)
    assert owed.ticks == tuple(first + dt.timedelta(hours=h) for h in range(3))
    assert not owed.dropped
