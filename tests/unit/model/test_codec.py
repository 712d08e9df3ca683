"""The codec: payloads round-trip, are signed and verified with a secret, and refuse what a
worker could not import (catalogue §5)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import pickle
import threading

import pytest

import jobq
from jobq.errors import SignatureError
from jobq.model.codec import (
    RESULT_CONTEXT,
    Codec,
    call_context,
    call_repr,
    check_callable,
    encode_call,
)


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


def test_a_signed_payload_verifies_only_in_its_own_context() -> None:
    codec = Codec("s3cret")
    plain_call = call_context(None, None)
    with_policy = call_context(None, "jobq.model.retry:NeverRetry")
    payload = encode_call(codec, _module_level, (1,), {}, with_policy)
    func, args, _ = codec.loads(payload, with_policy)
    assert func is _module_level and args == (1,)
    for other in (plain_call, call_context("m:Job", "jobq.model.retry:NeverRetry"), RESULT_CONTEXT):
        with pytest.raises(SignatureError, match="copied from another row"):
            codec.loads(payload, other)
    result = codec.dumps(5)  # a result's context
    assert codec.loads(result) == 5
    with pytest.raises(SignatureError):
        codec.loads(result, plain_call)
    # (job_class, policy) pairs that join to the same text stay apart: the parts are separated.
    assert call_context("a", "b") != call_context("a\0b", None)


def test_payloads_signed_before_contexts_still_load() -> None:
    """Rows written by jobq before 0.2 carry an unbound signature (marker 1)."""
    data = pickle.dumps((_module_level, (2,), {}), protocol=pickle.HIGHEST_PROTOCOL)
    legacy = b"\x01" + hmac.new(b"s3cret", data, hashlib.sha256).digest() + data
    assert Codec("s3cret").loads(legacy, call_context(None, None))[1] == (2,)
    with pytest.raises(SignatureError):
        Codec("other").loads(legacy, call_context(None, None))


def test_seals_hold_only_for_their_context_and_secret() -> None:
    codec = Codec("s3cret")
    seal = codec.seal(b"agent-filter\0u\0q\0a\0m:f")
    assert seal is not None and codec.seal_holds(b"agent-filter\0u\0q\0a\0m:f", seal)
    assert not codec.seal_holds(b"agent-filter\0u\0q\0b\0m:f", seal)
    assert not codec.seal_holds(b"agent-filter\0u\0q\0a\0m:f", None)
    assert not Codec("other").seal_holds(b"agent-filter\0u\0q\0a\0m:f", seal)
    assert Codec().seal(b"x") is None and Codec().seal_holds(b"x", None)
