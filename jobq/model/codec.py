"""How callables, arguments and results become bytes, and back.

Callables are stored by import path (pickle's own by-reference rule), arguments and results
are pickled. With a secret (`JOBQ_SECRET`), every payload carries an HMAC-SHA256 signature
and a payload whose signature fails is never unpickled: unpickling untrusted bytes runs code.
The signature also covers the payload's context (`call_context`, `RESULT_CONTEXT`): a call
verifies only as a call, with the job class and retry policy its row was put with, so that
none of the columns a worker imports from can be changed or swapped without the secret.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import io
import pickle
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jobq.errors import EncodingError, SignatureError
from jobq.model.bound import Bound
from jobq.model.failure import describe

# Callables that moved, as rows written before the move name them: (module, name) -> now.
_MOVED = {
    ("jobq.model.compose", name): ("jobq.jobs.compose", name)
    for name in ("run_parallel", "run_serial", "part_done", "run_postprocess")
}
_MOVED_FROM = b"jobq.model.compose"

_PLAIN = b"\x00"
_SIGNED_UNBOUND = b"\x01"  # signed without a context (jobq before 0.2): still read
_SIGNED = b"\x02"  # signed over its context and its data
_MAC_SIZE = 32

RESULT_CONTEXT = b"jobq-result"
"""The context of a job's result (and of an operator's decoded value): never a call's."""


def call_context(job_class: str | None, retry_policy: str | None) -> bytes:
    """The context a stored call is signed with: what its row makes a worker import besides
    the pickle itself (the job class, the retry policy). A call copied into a row with other
    ones does not verify."""
    if job_class is None and retry_policy is None:
        return _PLAIN_CALL_CONTEXT  # most calls: a plain Job without a retry policy
    return b"\0".join((b"jobq-call", (job_class or "").encode(), (retry_policy or "").encode()))


_PLAIN_CALL_CONTEXT = b"jobq-call\0\0"


def payload_data(payload: bytes) -> bytes | None:
    """The pickle inside a stored payload, unverified (None: not a payload jobq writes); for
    tools that read a payload's opcodes without unpickling it."""
    marker = payload[:1]
    if marker in (_SIGNED, _SIGNED_UNBOUND):
        return payload[1 + _MAC_SIZE :]
    if marker == _PLAIN:
        return payload[1:]
    return None


class Codec:
    """Encodes and decodes payloads, signing them when a secret is configured."""

    def __init__(self, secret: bytes | str | None = None) -> None:
        if isinstance(secret, str):
            secret = secret.encode()
        self._secret = secret or None

    @property
    def signs(self) -> bool:
        return self._secret is not None

    def _mac(self, data: bytes, context: bytes | None) -> bytes:
        """The signature of `data` in `context` (None: the unbound form of jobq before 0.2).
        The context goes first with its length, so no (context, data) pair reads as another."""
        assert self._secret is not None
        mac = hmac.new(self._secret, digestmod=hashlib.sha256)
        if context is not None:
            mac.update(len(context).to_bytes(4, "big") + context)
        mac.update(data)
        return mac.digest()

    def seal(self, context: bytes) -> str | None:
        """A signature of `context` alone (hex), for a stored setting that is not a pickle but
        that a worker imports from (an agent's filter path); None without a secret."""
        if self._secret is None:
            return None
        return self._mac(b"", b"jobq-seal\0" + context).hex()

    def seal_holds(self, context: bytes, seal: str | None) -> bool:
        """Whether `seal` is `context`'s seal under this codec's secret (always, without one)."""
        if self._secret is None:
            return True
        expected = self.seal(context)
        assert expected is not None
        return seal is not None and hmac.compare_digest(seal.encode(), expected.encode())

    def dumps(self, value: Any, context: bytes = RESULT_CONTEXT) -> bytes:
        """Pickle and (with a secret) sign `value` in `context` (a call's: `call_context`)."""
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        if self._secret is None:
            return _PLAIN + data
        return _SIGNED + self._mac(data, context) + data

    def loads(self, payload: bytes, context: bytes = RESULT_CONTEXT) -> Any:
        """Verify (with a secret) and unpickle a payload made by `dumps` in `context`."""
        payload = bytes(payload)
        marker, body = payload[:1], payload[1:]
        if marker in (_SIGNED, _SIGNED_UNBOUND):
            mac, data = body[:_MAC_SIZE], body[_MAC_SIZE:]
            bound = context if marker == _SIGNED else None
            if self._secret is not None and not hmac.compare_digest(mac, self._mac(data, bound)):
                raise SignatureError(
                    "payload signature does not match JOBQ_SECRET in its row; refusing to "
                    "unpickle it (was it written with another secret, tampered with, or "
                    "copied from another row or column?)"
                )
        elif marker == _PLAIN:
            if self._secret is not None:
                raise SignatureError(
                    "payload is not signed but JOBQ_SECRET is set; refusing to unpickle it"
                )
            data = body
        else:
            raise SignatureError("payload has an unknown format marker; refusing to unpickle it")
        if _MOVED_FROM in data:
            return _MovedNames(io.BytesIO(data)).load()
        return pickle.loads(data)


class _MovedNames(pickle.Unpickler):
    """Unpickles a payload that may name a callable at the place it had before it moved."""

    def find_class(self, module: str, name: str) -> Any:
        module, name = _MOVED.get((module, name), (module, name))
        return super().find_class(module, name)


def check_callable(func: Any) -> None:
    """Refuse what a worker in another process could not import: lambdas, local functions."""
    if type(func) is types.FunctionType:
        _check_function(func)  # the usual case, answered once per function
    else:
        _check(func)


@functools.lru_cache(maxsize=4096)
def _check_function(func: types.FunctionType) -> None:
    _check(func)  # an error is raised again each time: lru_cache keeps only successes


def _check(func: Any) -> None:
    if not callable(func):
        raise EncodingError(f"{describe(func)} is not callable; put a function or jobq.Job")
    target = func.__func__ if inspect.ismethod(func) else func
    name = str(getattr(target, "__qualname__", None) or getattr(target, "__name__", ""))
    if getattr(target, "__name__", "") == "<lambda>":
        raise EncodingError(
            f"cannot store lambda {describe(func)}: a worker must import the callable by its "
            f"path; define it with `def` at module level"
        )
    if "<locals>" in name:
        raise EncodingError(
            f"cannot store local function {name!r}: a worker must import the callable by its "
            f"path; move it to module level"
        )


def encode_call(
    codec: Codec,
    func: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    context: bytes | None = None,
) -> bytes:
    """Encode a call, signed in `context` (its row's `call_context`); an unpicklable part is
    an EncodingError that names it."""
    check_callable(func)
    try:
        call = (
            func,
            args if type(args) is tuple else tuple(args),
            kwargs if type(kwargs) is dict else dict(kwargs),
        )
        return codec.dumps(call, call_context(None, None) if context is None else context)
    except Exception as error:
        parts: list[tuple[str, Any]] = [("callable", func)]
        parts += [(f"argument {i}", a) for i, a in enumerate(args)]
        parts += [(f"keyword argument {k!r}", v) for k, v in kwargs.items()]
        for label, value in parts:
            try:
                pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as inner:
                raise EncodingError(
                    f"cannot store {label} {describe(value)}: it is not picklable ({inner})"
                ) from inner
        raise EncodingError(f"cannot store call of {describe(func)}: {error}") from error


def callable_name(func: Any) -> str:
    """`module.qualname` of a callable, or of a bound method as `Class.method`."""
    if type(func) is types.FunctionType:
        return _function_name(func)  # the usual case, answered once per function
    return _name(func)


@functools.lru_cache(maxsize=4096)
def _function_name(func: types.FunctionType) -> str:
    return _name(func)


def _name(func: Any) -> str:
    target = func.__func__ if inspect.ismethod(func) else func
    module = getattr(target, "__module__", None) or type(target).__module__
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{name}"


class _TheJob:
    def __repr__(self) -> str:
        return "<the job>"


_THE_JOB = _TheJob()


def call_repr(func: Any, args: Sequence[Any], kwargs: Mapping[str, Any], limit: int = 500) -> str:
    """A readable rendering of a call, stored so that monitoring never needs to unpickle."""
    if isinstance(func, Bound):  # Job.bind: the job itself comes first
        func, args = func.func, (_THE_JOB, *args)
    name = callable_name(func)
    if isinstance(func, types.MethodType):
        name = f"{describe(func.__self__)} :{func.__name__}"
    if not args and not kwargs:
        return f"{name}()" if len(name) <= limit - 2 else name[: limit - 3] + "..."
    rendered = [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
    text = f"{name}({', '.join(rendered)})"
    return text if len(text) <= limit else text[: limit - 3] + "..."
