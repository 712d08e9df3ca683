"""Unique jobs: `put(..., unique_key=...)` makes at most one job per key of a queue.

`Unique` is what a put asked for, checked at the call (`unique_options`): the key (or a
function giving each job of a `put_many` its key), the states in which a job holds its key
(`unique_while`), the period after a put in which no second job with the key is put
(`unique_for`), and what a conflicting put does (`on_conflict`). The database enforces it:
see `jobq.store.base.Store.enqueue_unique`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

MAX_KEY_LENGTH = 512
STATES = ("pending", "active")  # the states a job may hold its key in (active: claimed too)
ON_CONFLICT = ("keep", "replace")

KeySource = str | Callable[[Any], str | None]
"""A unique key, or (put_many) a function of each Job giving its key (None: no key)."""


@dataclass(frozen=True, slots=True)
class Unique:
    """What a put asked for; `key` is a key or a function of each job giving one."""

    key: KeySource | None
    while_: str | None  # "pending" or "pending,active" (as stored), None: unique_for only
    for_seconds: float | None
    replace: bool

    def key_of(self, job: Any) -> str | None:
        """The checked key of `job`: the put's, the function's, or the job's own attribute."""
        key = self.key(job) if callable(self.key) else self.key
        if key is None:
            key = getattr(job, "unique_key", None)
        return None if key is None else check_key(key)


def check_key(key: object) -> str:
    """`key` if it is a usable unique key; TypeError or ValueError naming it and the rule."""
    if not isinstance(key, str):
        raise TypeError(f"unique_key must be a string, got {type(key).__name__} {key!r}")
    if not key:
        raise ValueError("unique_key must not be empty: give a key such as 'email:42'")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(
            f"unique_key {key[:40]!r}... is {len(key)} characters long; the limit is "
            f"{MAX_KEY_LENGTH}: use a shorter key (a hash of a long one, for example)"
        )
    return key


def unique_options(
    unique_key: KeySource | None,
    unique_while: Iterable[str] | str | None,
    unique_for: dt.timedelta | None,
    on_conflict: str | None,
) -> Unique | None:
    """The put's unique options, checked (None: the put gave none). Without `unique_while`
    a key is held while pending or active, unless only `unique_for` is given."""
    if unique_key is None:
        if unique_while is None and unique_for is None and on_conflict is None:
            return None  # the usual put
        given = [
            name
            for name, value in (
                ("unique_while", unique_while),
                ("unique_for", unique_for),
                ("on_conflict", on_conflict),
            )
            if value is not None
        ]
        if given:
            raise ValueError(f"{', '.join(given)} needs a unique_key (none was given)")
        return None
    if not callable(unique_key):
        check_key(unique_key)
    if on_conflict is None:
        on_conflict = "keep"
    if on_conflict not in ON_CONFLICT:
        raise ValueError(f"on_conflict must be 'keep' or 'replace', got {on_conflict!r}")
    seconds = None
    if unique_for is not None:
        if not isinstance(unique_for, dt.timedelta):
            raise TypeError(f"unique_for must be a timedelta, got {unique_for!r}")
        if unique_for <= dt.timedelta(0):
            raise ValueError(f"unique_for must be a positive timedelta, got {unique_for}")
        seconds = unique_for.total_seconds()
    if unique_while is None:
        while_: str | None = None if seconds is not None else "pending,active"
    else:
        while_ = _check_states(unique_while)
    return Unique(unique_key, while_, seconds, on_conflict == "replace")


def _check_states(unique_while: Iterable[str] | str) -> str:
    states = (unique_while,) if isinstance(unique_while, str) else tuple(unique_while)
    for state in states:
        if state not in STATES:
            raise ValueError(
                f"unique_while: unknown state {state!r}; a job holds its key while "
                f"'pending' or ('pending', 'active') (active counts claimed jobs too)"
            )
    if "pending" not in states:
        raise ValueError(
            f"unique_while={states!r} must include 'pending': a second job would be pending "
            f"beside one running; give ('pending', 'active')"
        )
    return "pending,active" if "active" in states else "pending"
