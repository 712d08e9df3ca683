"""Secrets stay in their place: nothing jobq prints shows a database password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

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
