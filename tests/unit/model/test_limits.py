"""The pure rules of execution time limits (`jobq.model.limits`): which values are limits and
graces, the grace a job gets, and the limit it runs under."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from jobq.model.limits import check_grace, check_limit, grace_for, limit_of, seconds_of


def test_a_limit_is_a_timedelta_or_seconds_above_zero() -> None:
    assert seconds_of(dt.timedelta(minutes=5), "timeout") == 300.0
    assert seconds_of(2, "timeout") == 2.0
    assert seconds_of(0.25, "timeout") == 0.25
    for bad in (0, -1, 0.0, math.nan, math.inf, -math.inf, dt.timedelta(0)):
        with pytest.raises(ValueError, match="timeout must be > 0"):
            seconds_of(bad, "timeout")
    for wrong in ("5", None, True, [1]):
        with pytest.raises(TypeError, match=r"timeout must be a timedelta or a number"):
            seconds_of(wrong, "timeout")


def test_a_limit_shorter_than_a_configured_grace_is_refused() -> None:
    assert check_limit(10, 10) == 10.0
    assert check_limit(10, None) == 10.0
    with pytest.raises(ValueError, match=r"job_timeout \(5 s\) must not be shorter than the grace"):
        check_limit(5, 10, "job_timeout", "timeout_grace")


def test_a_grace_is_seconds_at_least_zero() -> None:
    assert check_grace(0) == 0.0
    assert check_grace(dt.timedelta(seconds=3)) == 3.0
    with pytest.raises(ValueError, match="timeout_grace must be >= 0"):
        check_grace(-0.5)
    with pytest.raises(TypeError, match="--timeout-grace must be a number"):
        check_grace("1", "--timeout-grace")


def test_the_grace_a_job_gets() -> None:
    assert grace_for(10.0, None) == pytest.approx(1.0)  # a tenth of its limit
    assert grace_for(3600.0, None) == 30.0  # at most 30 s
    assert grace_for(60.0, 5.0) == 5.0  # the configured one
    assert grace_for(2.0, 5.0) == 2.0  # never longer than the limit itself


def test_the_limit_a_job_runs_under() -> None:
    assert limit_of({"timeout": 90.0}, None) == 90.0
    assert limit_of({"timeout": 90.0}, 10.0) == 90.0  # its own first
    assert limit_of({}, 10.0) == 10.0  # else the worker's
    assert limit_of({}, None) is None
    # A value no put stores (written by hand, damaged) is no limit of its own.
    for odd in ("90", True, -1, 0, None):
        assert limit_of({"timeout": odd}, 7.0) == 7.0
