"""The monitor's grammar and JSON rendering (pure: no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from jobq.monitor import parse_interval, parse_selection, parse_states, to_json
from jobq.monitor.render import timedelta_json

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


def test_intervals() -> None:
    assert parse_interval("5M") == dt.timedelta(minutes=5)
    assert parse_interval("1h30m") == dt.timedelta(hours=1, minutes=30)
    assert parse_interval("2D3S") == dt.timedelta(days=2, seconds=3)
    assert parse_interval("2.5S") == dt.timedelta(seconds=2.5)
    for bad in ("", "5", "M5", "5X", "1M2H"):
        with pytest.raises(ValueError, match=r"bad interval .*\[nD\]\[nH\]\[nM\]\[nS\]"):
            parse_interval(bad)


def test_states() -> None:
    assert parse_states(["pending", "failed"]) == (("pending", "completed"), True)
    assert parse_states(["succeeded"]) == (("completed",), False)
    assert parse_states(["completed"]) == (("completed",), None)
    with pytest.raises(ValueError, match=r"unknown state.*running; known: pending"):
        parse_states(["running"])
    with pytest.raises(ValueError, match="zero or one of"):
        parse_states(["completed", "failed"])
    with pytest.raises(ValueError, match="at least one state"):
        parse_states([])


def test_filters() -> None:
    sel = parse_selection(
        ["active", "callable:send*", "queue:re*", "start:since2M", "end:before1H,since2H"], NOW
    )
    query = sel.query
    assert query.states == ("active",) and query.callable == "send*" and query.queue == "re*"
    assert query.start_since == NOW - dt.timedelta(minutes=2) and query.start_before is None
    assert query.end_before == NOW - dt.timedelta(hours=1)
    assert query.end_since == NOW - dt.timedelta(hours=2)
    uuid = "11111111-1111-4111-8111-111111111111"
    assert parse_selection(["pending", "uuid:THIS"], NOW, this_uuid=uuid).query.uuid == uuid


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["queue:x", "pending"], "placeful modifiers must come before named modifiers"),
        (["pending", "colour:red"], "unknown filter 'colour'"),
        (["pending", "start:2M"], "must start with 'since' or 'before'"),
        (["pending", "start:sinceX"], "bad interval 'X'"),
        (["pending", "start:since1M,since2M"], "'since' given twice"),
        (["pending", "uuid:THIS"], "uuid:THIS needs"),
        (["pending", "uuid:nope"], "is not a UUID"),
        (["pending", "queue:a", "queue:b"], "given twice"),
        (["pending", "callable:"], "needs a glob"),
    ],
)
def test_filter_errors_say_what_was_wrong(args: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_selection(args, NOW)


def test_json_rendering() -> None:
    assert timedelta_json(dt.timedelta(0)) == {"seconds": 0.0}
    assert timedelta_json(dt.timedelta(days=1, minutes=2, seconds=3.5)) == {
        "days": 1,
        "minutes": 2,
        "seconds": 3.5,
    }
    text = to_json({"b": NOW, "a": dt.timedelta(seconds=5)})
    assert (
        text == '{\n    "a": {\n        "seconds": 5.0\n    },\n    "b": "2030-01-01T12:00:00Z"\n}'
    )
