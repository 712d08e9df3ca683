"""Type aliases of jobq's public signatures."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import sqlite3
    from typing import Any

    import psycopg
    from sqlalchemy.engine import Connection as SqlAlchemyConnection
    from sqlalchemy.orm import Session as SqlAlchemySession

AppConnection: TypeAlias = (
    "sqlite3.Connection | psycopg.Connection[Any] | SqlAlchemyConnection | SqlAlchemySession"
)
"""What `Queue.put(conn=...)` joins: the application's open transaction on the same database,
as the driver's connection or a SQLAlchemy connection or session."""
