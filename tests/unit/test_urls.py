"""Database URLs are printed with their password masked."""

from __future__ import annotations

import pytest

from jobq._urls import masked_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (None, "./jobq.db"),
        ("sqlite:///jobq.db", "sqlite:///jobq.db"),
        ("postgresql://app@db/jobs", "postgresql://app@db/jobs"),
        ("postgresql://app:hunter2@db:5432/jobs", "postgresql://app:***@db:5432/jobs"),
        ("postgresql://app:p%40ss@db/jobs?schema=x", "postgresql://app:***@db/jobs?schema=x"),
        (
            "postgresql://db/jobs?user=app&password=hunter2",
            "postgresql://db/jobs?user=app&password=***",
        ),
    ],
)
def test_passwords_are_masked(url: str | None, shown: str) -> None:
    assert masked_url(url) == shown
