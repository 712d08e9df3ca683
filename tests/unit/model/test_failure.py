"""Failures: captured from exceptions, checked by type, shortened, pickled (catalogue §5)."""

from __future__ import annotations

import pickle

import jobq


def _failure(error: BaseException) -> jobq.Failure:
    try:
        raise error
    except BaseException as raised:
        return jobq.Failure.from_exception(raised)


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
