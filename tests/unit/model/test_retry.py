"""Retry policies without a database: what each hook answers, and the counts it saves
(catalogue §5, items 32-36)."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3

import psycopg_pool
import pytest

import jobq
from jobq.errors import is_conflict, is_disconnect
from jobq.model.retry import exponential_backoff, policy_path, ready_policy


def _failure(error: BaseException) -> jobq.Failure:
    try:
        raise error
    except BaseException as raised:
        return jobq.Failure.from_exception(raised)


def _conflict() -> tuple[jobq.Failure, BaseException]:
    error = jobq.ConflictError("could not serialize access")
    return _failure(error), error


def _disconnect() -> tuple[jobq.Failure, BaseException]:
    error = jobq.StoreUnavailable("server closed the connection")
    return _failure(error), error


class _SqlStateError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


# -- classification ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "error",
    [
        jobq.ConflictError("x"),
        _SqlStateError("40001"),
        _SqlStateError("40P01"),
        _SqlStateError("55P03"),
        sqlite3.OperationalError("database is locked"),
    ],
)
def test_conflicts_are_classified(error: BaseException) -> None:
    assert is_conflict(error)
    assert not is_disconnect(error)


@pytest.mark.parametrize(
    "error", [jobq.StoreUnavailable("gone"), _SqlStateError("08006"), _SqlStateError("08001")]
)
def test_disconnects_are_classified(error: BaseException) -> None:
    assert is_disconnect(error)
    assert not is_conflict(error)


@pytest.mark.parametrize(
    "error", [psycopg_pool.PoolTimeout("couldn't get a connection"), psycopg_pool.TooManyRequests()]
)
def test_a_pool_that_gives_no_connection_is_a_lost_connection(error: BaseException) -> None:
    # A hung link makes psycopg_pool's getconn time out: jobq's lost connection, retried.
    assert is_disconnect(error) and not is_conflict(error)
    sleeps: list[float] = []
    policy = jobq.RetryCommonFourTimes(sleep=sleeps.append)
    assert policy.job_error(_failure(error), error) is True
    assert policy.data["disconnect"] == 1 and sleeps == [5.0]


def test_a_closed_pool_is_not_a_lost_connection() -> None:
    assert not is_disconnect(psycopg_pool.PoolClosed("the pool is closed"))


@pytest.mark.parametrize(
    "error", [RuntimeError("x"), ValueError("x"), sqlite3.OperationalError("no such table")]
)
def test_other_errors_are_neither(error: BaseException) -> None:
    assert not is_conflict(error)
    assert not is_disconnect(error)


# -- RetryCommonFourTimes (item 32-35) --------------------------------------------------------
def test_default_conflicts_true_four_times_then_false() -> None:
    sleeps: list[float] = []
    policy = jobq.RetryCommonFourTimes(sleep=sleeps.append)
    answers = [policy.job_error(*_conflict()) for _ in range(5)]
    assert answers == [True, True, True, True, False]
    # The count is shared with commit_error within one run: it gives up at once.
    assert policy.commit_error(*_conflict()) is False
    assert sleeps == []  # conflicts are retried without backoff
    assert policy.run_counts["conflict"] == 6
    assert policy.data["conflict"] == 6
    assert "ConflictError" in policy.data["last_conflict"]


def test_default_commit_conflicts_true_four_times_then_false() -> None:
    policy = jobq.RetryCommonFourTimes(sleep=lambda s: None)
    answers = [policy.commit_error(*_conflict()) for _ in range(5)]
    assert answers == [True, True, True, True, False]


def test_job_and_commit_conflicts_add_up_in_one_run() -> None:
    policy = jobq.RetryCommonFourTimes(sleep=lambda s: None)
    assert policy.job_error(*_conflict()) is True
    assert policy.commit_error(*_conflict()) is True
    assert policy.job_error(*_conflict()) is True
    assert policy.commit_error(*_conflict()) is True
    assert policy.job_error(*_conflict()) is False


def test_counts_span_runs_through_the_saved_data() -> None:
    # Each run of a job builds its policy from the saved data: the limit holds over all of
    # them (a job put back after each failed group commit), not per run.
    data: dict[str, object] = {}
    answers = []
    for _ in range(6):
        policy = jobq.RetryCommonFourTimes(data, sleep=lambda s: None)
        answers.append(policy.commit_error(*_conflict()))
        assert policy.run_counts == {"conflict": 1}
        data = policy.data
    assert answers == [True, True, True, True, False, False]
    assert data["conflict"] == 6


def test_count_returns_the_total_over_the_jobs_life() -> None:
    policy = jobq.RetryPolicy({"value_error": 2})
    assert policy.count("value_error") == 3
    assert policy.run_counts == {"value_error": 1}


def test_disconnect_backoff_grows_across_runs() -> None:
    sleeps: list[float] = []
    data: dict[str, object] = {}
    for _ in range(4):
        policy = jobq.RetryCommonFourTimes(data, sleep=sleeps.append)
        assert policy.commit_error(*_disconnect()) is True
        data = policy.data
    assert sleeps == [5.0, 10.0, 15.0, 20.0]


def test_default_disconnects_retry_forever_with_backoff() -> None:
    sleeps: list[float] = []
    policy = jobq.RetryCommonFourTimes(sleep=sleeps.append)
    answers = [policy.job_error(*_disconnect()) for _ in range(50)]
    assert answers == [True] * 50
    expected = [5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0]
    assert sleeps[:12] == expected
    assert sleeps[12:] == [60.0] * 38
    assert policy.commit_error(*_disconnect()) is True
    assert sleeps[-1] == 60.0
    assert len(sleeps) == 51


@pytest.mark.parametrize("error", [RuntimeError("bad"), ValueError("worse")])
def test_default_other_errors_are_not_retried(error: BaseException) -> None:
    sleeps: list[float] = []
    policy = jobq.RetryCommonFourTimes(sleep=sleeps.append)
    assert policy.job_error(_failure(error), error) is False
    assert policy.commit_error(_failure(error), error) is False
    assert sleeps == []


def test_default_interrupted_true_nine_times_then_false() -> None:
    policy = jobq.RetryCommonFourTimes()
    assert [policy.interrupted() for _ in range(10)] == [True] * 9 + [False]
    assert policy.data["interruptions"] == 10


def test_interruptions_count_across_runs() -> None:
    data: dict[str, object] = {}
    answers = []
    for _ in range(10):  # each interruption is seen by a fresh policy built from saved data
        policy = jobq.RetryCommonFourTimes(data)
        answers.append(policy.interrupted())
        data = policy.data
    assert answers == [True] * 9 + [False]


def test_forever_interrupted_always_true() -> None:
    policy = jobq.RetryCommonForever()
    assert all(policy.interrupted() for _ in range(100))


def test_forever_conflicts_retry_forever_without_backoff() -> None:
    sleeps: list[float] = []
    policy = jobq.RetryCommonForever(sleep=sleeps.append)
    assert all(policy.job_error(*_conflict()) for _ in range(30))
    assert all(policy.commit_error(*_conflict()) for _ in range(30))
    assert sleeps == []


def test_forever_disconnects_back_off() -> None:
    sleeps: list[float] = []
    policy = jobq.RetryCommonForever(sleep=sleeps.append)
    assert all(policy.job_error(*_disconnect()) for _ in range(3))
    assert sleeps == [5.0, 10.0, 15.0]


def test_forever_other_job_errors_are_not_retried() -> None:
    policy = jobq.RetryCommonForever(sleep=lambda s: None)
    error = RuntimeError("no")
    assert policy.job_error(_failure(error), error) is False


def test_forever_commit_error_retries_forever_with_backoff_and_critical_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sleeps: list[float] = []
    policy = jobq.RetryCommonForever(sleep=sleeps.append, job_label="job 7")
    error = RuntimeError("before-commit hook broke")
    with caplog.at_level(logging.DEBUG, logger="jobq.events"):
        answers = [policy.commit_error(_failure(error), error) for _ in range(70)]
    assert answers == [True] * 70
    assert sleeps[:61] == [float(n) for n in range(61)]
    assert sleeps[61:] == [60.0] * 9
    critical = [
        r for r in caplog.records if r.name == "jobq.events" and r.levelno == logging.CRITICAL
    ]
    # the 1st and every 5th occurrence
    assert len(critical) == 1 + 70 // 5
    assert "job 7" in critical[0].getMessage()
    assert "before-commit hook broke" in critical[0].getMessage()


def test_never_retry_says_no_to_everything() -> None:
    policy = jobq.NeverRetry()
    for failure, error in (_conflict(), _disconnect(), (_failure(RuntimeError()), RuntimeError())):
        assert not policy.job_error(failure, error)
        assert not policy.commit_error(failure, error)
    assert not policy.interrupted()


def test_retry_logs_on_first_and_every_fifth_and_final(caplog: pytest.LogCaptureFixture) -> None:
    policy = jobq.RetryCommonFourTimes(sleep=lambda s: None, job_label="job 3")
    with caplog.at_level(logging.DEBUG, logger="jobq.trace"):
        for _ in range(5):
            policy.job_error(*_conflict())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "requests another attempt after 1 counts of conflict" in warnings[0]
    assert "not retrying after 5 counts of conflict" in warnings[1]


def test_policy_data_is_copied_not_shared() -> None:
    saved = {"conflict": 2}
    policy = jobq.RetryCommonFourTimes(saved, sleep=lambda s: None)
    policy.job_error(*_conflict())
    assert saved == {"conflict": 2}
    assert policy.data["conflict"] == 3


def test_policy_path() -> None:
    assert policy_path(jobq.NeverRetry) == "jobq.model.retry:NeverRetry"
    with pytest.raises(TypeError):
        policy_path(int)  # type: ignore[arg-type]

    class Local(jobq.RetryPolicy):
        pass

    with pytest.raises(TypeError, match="module level"):
        policy_path(Local)


# -- Failure ---------------------------------------------------------------------------------


# -- RetryWithBackoff (put(..., retries=N)) -------------------------------------------------------
class _FixedJitter(jobq.RetryWithBackoff):
    def jitter(self) -> float:
        return 0.5


def test_backoff_retries_n_times_with_growing_delays_then_fails() -> None:
    data: dict[str, object] = {"retries": 3}
    answers = []
    for _ in range(4):  # each retry is a new run (the job is rescheduled), from saved data
        policy = _FixedJitter(data)
        error = ValueError("flaky")
        answers.append(policy.job_error(_failure(error), error))
        data = policy.data
    assert answers == [
        dt.timedelta(seconds=0.75),
        dt.timedelta(seconds=1.5),
        dt.timedelta(seconds=3.0),
        False,
    ]
    assert data["error"] == 4
    assert "flaky" in str(data["last_error"])
    assert data["backoff"] == 3.0  # the last backoff chosen, shown with the next run


def test_backoff_jitter_stays_within_half_and_full_and_never_shrinks() -> None:
    for n in range(1, 30):
        low = exponential_backoff(n, 1.0, 300.0, 0.0)
        high = exponential_backoff(n, 1.0, 300.0, 0.999999)
        ceiling = min(300.0, 2.0 ** (n - 1))
        assert low == ceiling / 2 and ceiling / 2 <= high <= ceiling
        if ceiling * 2 <= 300.0:  # below the cap, a retry never waits less than the last
            assert exponential_backoff(n + 1, 1.0, 300.0, 0.0) >= high - 1e-9
    assert exponential_backoff(5000, 1.0, 300.0, 1.0) == 300.0  # no overflow


def test_backoff_keeps_the_default_handling_of_conflicts() -> None:
    policy = jobq.RetryWithBackoff({"retries": 0}, sleep=lambda s: None)
    assert [policy.job_error(*_conflict()) for _ in range(5)] == [True] * 4 + [False]
    error = RuntimeError("once")
    assert policy.job_error(_failure(error), error) is False  # retries=0: errors not retried


def test_backoff_without_saved_retries_uses_its_default() -> None:
    policy = _FixedJitter()
    error = ValueError("x")
    answers = [policy.job_error(_failure(error), error) for _ in range(4)]
    assert [bool(a) for a in answers] == [True, True, True, False]


@pytest.mark.parametrize(
    ("retries", "kind", "words"),
    [
        (-1, ValueError, ">= 0"),
        (1.5, TypeError, "whole number"),
        (True, TypeError, "whole number"),
        ("3", TypeError, "whole number"),
    ],
)
def test_ready_policy_refuses_bad_retries(retries: object, kind: type, words: str) -> None:
    with pytest.raises(kind, match=words):
        ready_policy(retries, None)


def test_ready_policy_combines_only_with_its_subclasses() -> None:
    assert ready_policy(2, None) is jobq.RetryWithBackoff
    assert ready_policy(2, _FixedJitter) is _FixedJitter
    with pytest.raises(TypeError, match="cannot be combined with retry_policy"):
        ready_policy(2, jobq.NeverRetry)
