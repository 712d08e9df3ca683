"""Secrets stay in their place: nothing jobq prints shows a database password."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

import pytest

import jobq


def test_repr_of_a_database_masks_its_password(db_url: str) -> None:
    if db_url.startswith("postgresql"):
        parts = urlsplit(db_url)  # trust auth: any password is accepted
        db_url = urlunsplit(
            parts._replace(netloc=f"postgres:hunter2@{parts.hostname}:{parts.port}")
        )
    with jobq.connect(db_url) as db:
        shown = repr(db)
        assert "hunter2" not in shown
        assert shown.startswith(f"<jobq.Database {db.engine} ")
        if db.engine == "postgres":
            assert "postgres:***@" in shown


def test_a_secret_that_is_not_text_or_bytes_is_refused_at_connect(db_url: str) -> None:
    with pytest.raises(jobq.ConfigError, match=r"secret must be a str or bytes.*not int"):
        jobq.connect(db_url, secret=123)  # type: ignore[arg-type]


def test_a_postgresql_connect_failure_says_why_at_once_and_masks_the_password() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(jobq.StoreUnavailable) as raised:
        jobq.connect(f"postgresql://app:hunter2@127.0.0.1:{port}/app")
    message = str(raised.value)
    assert "Connection refused" in message  # the cause, not "pool initialization incomplete"
    assert "hunter2" not in message and "app:***@" in message
