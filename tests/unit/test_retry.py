"""Retry policies, failures and the codec, without a database (catalogue §5, items 32-36)."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import pickle
import sqlite3
import threading

import pytest

import jobq
from jobq.errors import SignatureError, is_conflict, is_disconnect
from jobq.model.codec import Codec, call_repr, check_callable, encode_call
from jobq.model.retry import policy_path


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


def test_run_counts_start_fresh_but_saved_data_persists() -> None:
    first = jobq.RetryCommonFourTimes(sleep=lambda s: None)
    for _ in range(5):
        first.job_error(*_conflict())
    # A later run of the same job (a new policy from the saved data) counts again from zero.
    second = jobq.RetryCommonFourTimes(first.data, sleep=lambda s: None)
    assert second.run_counts == {}
    assert second.job_error(*_conflict()) is True
    assert second.data["conflict"] == 6


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
class _AppError(ValueError):
    pass


def _raise_app_error() -> None:
    secret_local = "visible in verbose"  # noqa: F841 - shown in the verbose traceback
    raise _AppError("it broke")


def test_failure_from_exception() -> None:
    try:
        _raise_app_error()
    except _AppError as error:
        failure = jobq.Failure.from_exception(error)
    assert failure.type_name.endswith("_AppError")
    assert failure.message == "it broke"
    assert "_raise_app_error" in failure.traceback
    assert "Traceback" in failure.traceback
    assert "secret_local = 'visible in verbose'" in failure.verbose
    assert str(failure) == f"{failure.type_name}: it broke"
    assert "it broke" in repr(failure)


def test_failure_check() -> None:
    failure = _failure(_AppError("x"))
    assert failure.check(_AppError)
    assert failure.check(ValueError)
    assert failure.check(Exception)
    assert failure.check("ValueError")
    assert failure.check(KeyError, ValueError)
    assert not failure.check(KeyError)
    assert not failure.check(RuntimeError, "TypeError")
    conflict = _failure(jobq.ConflictError("c"))
    assert conflict.check(jobq.StoreError, jobq.JobqError)


def test_failure_brief_traceback() -> None:
    failure = _failure(_AppError("short"))
    brief = failure.brief_traceback().splitlines()
    assert brief[0].startswith("Traceback")
    assert any(line.startswith("File ") for line in brief)
    assert brief[-1] == f"{failure.type_name}: short"
    assert len(brief) < len(failure.traceback.splitlines()) + 1


def test_failure_of_unraised_exception_and_pickling() -> None:
    failure = jobq.Failure.from_exception(KeyError("k"))
    assert failure.type_name == "KeyError"
    assert failure.brief_traceback() == "KeyError: 'k'"
    assert pickle.loads(pickle.dumps(failure)) == failure


def test_failure_survives_a_broken_repr_in_locals() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    def explode(value: object) -> None:
        raise ValueError("with broken local")

    try:
        explode(Broken())
    except ValueError as error:
        failure = jobq.Failure.from_exception(error)
    assert "unrepresentable" in failure.verbose


# -- Codec --------------------------------------------------------------------------------------
def test_codec_round_trip_plain() -> None:
    codec = Codec()
    assert not codec.signs
    value = {"a": [1, 2, 3], "when": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}
    assert codec.loads(codec.dumps(value)) == value


def test_codec_signs_and_verifies() -> None:
    codec = Codec("s3cret")
    assert codec.signs
    payload = codec.dumps([1, 2])
    assert codec.loads(payload) == [1, 2]
    assert Codec(b"s3cret").loads(payload) == [1, 2]


def test_codec_refuses_tampered_payload() -> None:
    codec = Codec("s3cret")
    payload = bytearray(codec.dumps(("hello", 1)))
    payload[-2] ^= 0xFF
    with pytest.raises(SignatureError):
        codec.loads(bytes(payload))


def test_codec_refuses_other_secret_and_unsigned_payload() -> None:
    signed = Codec("one").dumps(1)
    with pytest.raises(SignatureError):
        Codec("two").loads(signed)
    with pytest.raises(SignatureError, match="not signed"):
        Codec("one").loads(Codec().dumps(1))
    with pytest.raises(SignatureError, match="unknown format"):
        Codec().loads(b"\x07junk")


class _Evil:
    ran = False

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_Evil._mark, ())

    @staticmethod
    def _mark() -> None:
        _Evil.ran = True


def test_codec_never_unpickles_a_forged_payload() -> None:
    forged = b"\x01" + b"\x00" * 32 + pickle.dumps(_Evil())
    with pytest.raises(SignatureError):
        Codec("s3cret").loads(forged)
    assert not _Evil.ran


def _module_level(x: int) -> int:
    return x


class _Holder:
    def method(self) -> int:
        return 1


def test_lambdas_and_local_functions_are_refused() -> None:
    codec = Codec()
    with pytest.raises(jobq.EncodingError, match="lambda"):
        encode_call(codec, lambda: 1, (), {})

    def local_function() -> None:
        pass

    with pytest.raises(jobq.EncodingError, match="local_function"):
        encode_call(codec, local_function, (), {})
    with pytest.raises(TypeError):  # EncodingError is a TypeError
        check_callable(42)


def test_unpicklable_argument_is_named() -> None:
    lock = threading.Lock()
    with pytest.raises(jobq.EncodingError, match="argument 1") as info:
        encode_call(Codec(), _module_level, (1, lock), {})
    assert "lock" in str(info.value).lower()
    with pytest.raises(jobq.EncodingError, match="keyword argument 'f'"):
        encode_call(Codec(), _module_level, (), {"f": lambda: 0})


def test_allowed_callables_encode() -> None:
    codec = Codec()
    for func in (_module_level, _Holder().method, functools.partial(_module_level, 1), print):
        func2, _args, _kwargs = codec.loads(encode_call(codec, func, (), {}))
        assert callable(func2)
    assert call_repr(_module_level, (1,), {"y": "z"}).endswith("_module_level(1, y='z')")
