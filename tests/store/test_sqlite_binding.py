"""jobq's SQLite driver binds None and bytes through identity adapters in sqlite3's registry
(faster than sqlite3's attribute lookups): an application's own adapters for those types are
kept, and its own connections store what they stored before."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_an_application_adapter_registered_first_is_kept() -> None:
    out = _run(
        """
        import sqlite3
        sqlite3.register_adapter(bytes, lambda b: b.hex())
        import jobq.store.sqlite  # registers its adapters only where none is
        conn = sqlite3.connect(":memory:")
        print(conn.execute("SELECT typeof(?), ?", (b"ab", b"ab")).fetchone())
        """
    )
    assert out == "('text', '6162')"


def test_null_and_blob_bind_as_before_in_the_application_connections() -> None:
    out = _run(
        """
        import sqlite3
        import jobq.store.sqlite
        conn = sqlite3.connect(":memory:")
        row = conn.execute("SELECT typeof(?), typeof(?), ?, ?", (None, b"\\x00x", None, b"\\x00x"))
        print(row.fetchone())
        """
    )
    assert out == "('null', 'blob', None, b'\\x00x')"
