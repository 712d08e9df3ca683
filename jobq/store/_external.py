"""Find the driver connection inside what an application hands to `put(conn=...)`.

Accepted: the driver's own connection (sqlite3 / psycopg), a SQLAlchemy `Connection`, or a
SQLAlchemy `Session` (its current connection). jobq then writes in that connection's open
transaction and never commits it: the job exists only if the application commits.
"""

from __future__ import annotations

from typing import Any

from jobq.errors import ConfigError


def driver_connection(conn: Any, expected: type | tuple[type, ...], engine: str) -> Any:
    """Return the DBAPI connection behind `conn`, checking it belongs to `engine`."""
    candidate = conn
    # SQLAlchemy Session: its connection for the current transaction.
    if hasattr(candidate, "get_bind") and hasattr(candidate, "connection"):
        candidate = candidate.connection()
    # SQLAlchemy Connection -> pool proxy -> driver connection. In SQLAlchemy 2.0 style the
    # transaction begins on first use; writing past it would leave commit() nothing to commit.
    is_sqlalchemy = callable(getattr(candidate, "begin", None)) and callable(
        getattr(candidate, "in_transaction", None)
    )
    if is_sqlalchemy and not candidate.in_transaction():
        candidate.begin()
    proxied = getattr(candidate, "connection", None)
    driver = getattr(proxied, "driver_connection", None)
    if driver is not None:
        candidate = driver
    if not isinstance(candidate, expected):
        raise ConfigError(
            f"conn={conn!r} is not a {engine} connection; pass the connection (or SQLAlchemy "
            f"connection or session) of the same database as this jobq.Database"
        )
    return candidate
