"""The outcome decision (`jobq.model.outcome`), without a database: each kind of answer a
retry policy gives, and each rule `decide` applies to it (deadline, callbacks, naive times)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pytest

import jobq
from jobq.model.outcome import (
    Fail,
    PolicyFailed,
    RetryAt,
    RetryNow,
    ask,
    deadline_of,
    decide,
    failure_log_level,
)
from jobq.model.retry import Decision

NOW = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
FAILURE = jobq.Failure.from_exception(ValueError("boom"))


def _decide(
    answer: Decision | PolicyFailed,
    *,
    deadline: dt.datetime | None = None,
    is_callback: bool = False,
) -> RetryNow | RetryAt | Fail:
    return decide(answer, FAILURE, now=NOW, deadline=deadline, is_callback=is_callback)


# -- each kind of answer --------------------------------------------------------------------------
def test_true_retries_now() -> None:
    assert _decide(True) == RetryNow()


@pytest.mark.parametrize("answer", [False, None, 1, "yes"])
def test_anything_but_true_or_a_time_gives_up_with_the_failure(answer: Decision) -> None:
    assert _decide(answer) == Fail(FAILURE, "policy")


def test_a_timedelta_retries_that_long_after_now() -> None:
    assert _decide(dt.timedelta(minutes=5)) == RetryAt(NOW + dt.timedelta(minutes=5))


@pytest.mark.parametrize("delta", [dt.timedelta(0), dt.timedelta(seconds=-3)])
def test_a_zero_or_negative_timedelta_is_a_time_not_yet_later(delta: dt.timedelta) -> None:
    # The store puts a job whose time is not after now at the front of its queue.
    assert _decide(delta) == RetryAt(NOW + delta)


def test_an_aware_datetime_is_kept_as_it_is() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    at = dt.datetime(2030, 6, 1, 12, 0, tzinfo=paris)
    decided = _decide(at)
    assert decided == RetryAt(at)
    assert isinstance(decided, RetryAt) and decided.at.tzinfo is paris


def test_a_naive_datetime_means_utc() -> None:
    decided = _decide(dt.datetime(2030, 6, 1, 12, 0))
    assert decided == RetryAt(dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC))


# -- a hook that raises ---------------------------------------------------------------------------
def test_ask_returns_the_hooks_answer() -> None:
    seen: list[object] = []

    def hook(failure: jobq.Failure, error: BaseException) -> Decision:
        seen.append((failure, error))
        return dt.timedelta(seconds=1)

    error = ValueError("x")
    assert ask(hook, FAILURE, error) == dt.timedelta(seconds=1)
    assert seen == [(FAILURE, error)]


def test_a_hook_that_raises_gives_up_and_keeps_its_error() -> None:
    broken = RuntimeError("policy bug")

    def hook() -> Decision:
        raise broken

    answer = ask(hook)
    assert answer == PolicyFailed(broken)
    decided = _decide(answer, deadline=NOW + dt.timedelta(days=1))
    assert decided == Fail(FAILURE, "policy failed", broken)


def test_ask_lets_a_base_exception_through() -> None:
    def hook() -> Decision:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ask(hook)


def test_a_real_policy_through_ask_and_decide() -> None:
    policy = jobq.RetryCommonFourTimes({}, sleep=lambda seconds: None)
    error = jobq.ConflictError("could not serialize access")
    failure = jobq.Failure.from_exception(error)
    answers = [ask(policy.job_error, failure, error) for _ in range(5)]
    decided = [decide(a, failure, now=NOW, deadline=None, is_callback=False) for a in answers]
    assert decided == [RetryNow()] * 4 + [Fail(failure, "policy")]


# -- the deadline rule ---------------------------------------------------------------------------
@pytest.mark.parametrize("answer", [True, dt.timedelta(hours=1), dt.timedelta(0), NOW])
def test_no_retry_after_the_deadline(answer: Decision) -> None:
    assert _decide(answer, deadline=NOW - dt.timedelta(seconds=1)) == Fail(FAILURE, "deadline")


@pytest.mark.parametrize("deadline", [NOW, NOW + dt.timedelta(seconds=1)])
def test_a_retry_up_to_the_deadline_is_kept(deadline: dt.datetime) -> None:
    assert _decide(True, deadline=deadline) == RetryNow()
    assert _decide(dt.timedelta(hours=2), deadline=deadline) == RetryAt(NOW + dt.timedelta(hours=2))


def test_giving_up_after_the_deadline_is_the_policys_own() -> None:
    assert _decide(False, deadline=NOW - dt.timedelta(days=1)) == Fail(FAILURE, "policy")


def test_the_deadline_is_begin_after_plus_begin_by() -> None:
    assert deadline_of(NOW, None) is None
    assert deadline_of(NOW, 90.5) == NOW + dt.timedelta(seconds=90.5)


# -- the callback rule ---------------------------------------------------------------------------
@pytest.mark.parametrize("answer", [dt.timedelta(minutes=1), dt.datetime(2030, 6, 1, 12, 0)])
def test_a_callback_is_retried_now_instead_of_rescheduled(answer: Decision) -> None:
    decided = _decide(answer, is_callback=True)
    assert decided == RetryNow(refused=answer)


def test_a_callback_may_retry_now_or_give_up() -> None:
    assert _decide(True, is_callback=True) == RetryNow()
    assert _decide(False, is_callback=True) == Fail(FAILURE, "policy")


def test_the_deadline_rule_comes_before_the_callback_rule() -> None:
    decided = _decide(dt.timedelta(minutes=1), deadline=NOW - dt.timedelta(1), is_callback=True)
    assert decided == Fail(FAILURE, "deadline")


# -- the values and the failure level ------------------------------------------------------------
def test_the_values_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RetryAt(NOW).at = NOW  # type: ignore[misc]
    assert not hasattr(RetryNow(), "__dict__")  # slotted


def test_failure_log_level() -> None:
    assert failure_log_level(None, is_callback=False) == logging.ERROR
    assert failure_log_level(None, is_callback=True) == logging.CRITICAL
    assert failure_log_level(logging.WARNING, is_callback=True) == logging.WARNING
