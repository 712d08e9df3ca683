"""The codec: payloads round-trip, are signed and verified with a secret, and refuse what a
worker could not import (catalogue §5)."""

from __future__ import annotations

import datetime as dt
import functools
import pickle
import threading

import pytest

import jobq
from jobq.errors import SignatureError
from jobq.model.codec import Codec, call_repr, check_callable, encode_call


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
