"""Failures: captured from exceptions, checked by type, shortened, pickled (catalogue §5)."""

from __future__ import annotations

import pickle

import pytest

import jobq
import jobq.model.failure


def _failure(error: BaseException) -> jobq.Failure:
    try:
        raise error
    except BaseException as raised:
        return jobq.Failure.from_exception(raised)


class _AppError(ValueError):
    pass


def _raise_app_error() -> None:
    shown_local = "visible in verbose"  # noqa: F841 - shown in the verbose traceback
    api_token = "hunter2"  # noqa: F841 - redacted by its name
    dsn = "postgresql://app:hunter2@db/app"  # noqa: F841 - its password masked
    raise _AppError("it broke")


def _app_error() -> _AppError:
    try:
        _raise_app_error()
    except _AppError as error:
        return error
    raise AssertionError("did not raise")


def test_failure_from_exception() -> None:
    failure = jobq.Failure.from_exception(_app_error())
    assert failure.type_name.endswith("_AppError")
    assert failure.message == "it broke"
    assert "_raise_app_error" in failure.traceback
    assert "Traceback" in failure.traceback
    assert str(failure) == f"{failure.type_name}: it broke"
    assert "it broke" in repr(failure)


def test_frame_locals_are_not_recorded_unless_asked_for() -> None:
    failure = jobq.Failure.from_exception(_app_error())
    assert failure.verbose == ""
    assert "hunter2" not in repr(jobq.model.failure.failure_dict(failure))


def test_frame_locals_when_asked_for_redact_secret_names_and_url_passwords() -> None:
    failure = jobq.Failure.from_exception(_app_error(), with_locals=True)
    assert "shown_local = 'visible in verbose'" in failure.verbose
    assert "api_token = <redacted>" in failure.verbose
    assert "dsn = 'postgresql://app:***@db/app'" in failure.verbose
    assert "hunter2" not in failure.verbose


def test_the_redaction_pattern_is_the_callers() -> None:
    failure = jobq.Failure.from_exception(_app_error(), with_locals=True, redact="^shown_")
    assert "shown_local = <redacted>" in failure.verbose
    assert "api_token = 'hunter2'" in failure.verbose  # the caller's pattern replaced the default
    with pytest.raises(ValueError, match="not a regular expression"):
        jobq.Failure.from_exception(_app_error(), with_locals=True, redact="(unclosed")


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
        failure = jobq.Failure.from_exception(error, with_locals=True)
    assert "unrepresentable" in failure.verbose


# -- Codec --------------------------------------------------------------------------------------
