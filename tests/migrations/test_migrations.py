"""A database upgraded through the numbered migrations has the same structure as a fresh one
built from `schema.sql`, on each engine (tables, columns, indexes and their predicates)."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from worker_helpers import PG_URL, pg_parts, sqlite_path

import jobq
from jobq.model.codec import encode_call
from jobq.store._sql import SCHEMA_VERSION, load_migrations, load_schema


def _sqlite_structure(path: str) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        columns = {
            t: [tuple(c[1:6]) for c in conn.execute(f"PRAGMA table_info({t})")] for t in tables
        }
        indexes = {
            name: (table, re.sub(r"\s+", " ", sql.replace("IF NOT EXISTS ", "")).strip())
            for name, table, sql in conn.execute(
                "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'"
            )
            if sql is not None
        }
        autoindexes = sorted(
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NULL"
            )
        )
        (version,) = conn.execute("SELECT version FROM jobq_schema").fetchone()
        return {
            "columns": columns,
            "indexes": indexes,
            "autoindexes": autoindexes,
            "version": version,
        }
    finally:
        conn.close()


def _pg_structure(db_url: str) -> dict[str, Any]:
    conninfo, schema = pg_parts(db_url)
    with psycopg.connect(conninfo) as conn:
        columns = conn.execute(
            "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, "
            "column_default, is_identity FROM information_schema.columns "
            "WHERE table_schema = %s ORDER BY table_name, ordinal_position",
            (schema,),
        ).fetchall()
        indexes = conn.execute(
            "SELECT tablename, indexname, replace(indexdef, %s, '') FROM pg_indexes "
            "WHERE schemaname = %s ORDER BY indexname",
            (f"{schema}.", schema),
        ).fetchall()
        constraints = conn.execute(
            "SELECT table_name, constraint_name, constraint_type "
            "FROM information_schema.table_constraints WHERE table_schema = %s "
            "AND constraint_type <> 'CHECK' ORDER BY table_name, constraint_name",
            (schema,),
        ).fetchall()
        (version,) = conn.execute(f'SELECT version FROM "{schema}".jobq_schema').fetchone()
    return {
        "columns": columns,
        "indexes": indexes,
        "constraints": constraints,
        "version": version,
    }


def structure(db_url: str) -> dict[str, Any]:
    if db_url.startswith("sqlite"):
        return _sqlite_structure(sqlite_path(db_url))
    return _pg_structure(db_url)


@pytest.fixture
def old_url(engine: str, tmp_path: Any) -> Iterator[str]:
    """A second, empty database on the engine under test (to build at an old version)."""
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    schema = f"jobq_test_{uuid.uuid4().hex[:12]}"
    yield f"{PG_URL}?schema={schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def build_at_version(url: str, version: int) -> None:
    """Create a database as jobq's release at `version` left it: migrations 1..version."""
    db = jobq.connect(url, migrate=False)
    try:
        store: Any = db.store
        if store.engine == "postgres" and store.schema:
            with store._transaction() as ex:
                ex.raw(f'CREATE SCHEMA IF NOT EXISTS "{store.schema}"')
        with store._transaction() as ex:
            for number, statements in load_migrations(store.engine):
                if number <= version:
                    for statement in statements:
                        ex.raw(statement)
            ex.run("set_schema_version", version=version)
    finally:
        db.close()


def test_migrations_are_numbered_from_one_without_gaps(engine: str) -> None:
    numbers = [n for n, _ in load_migrations(engine)]
    assert numbers == list(range(1, SCHEMA_VERSION + 1))
    assert all(statements for _, statements in load_migrations(engine))
    assert load_schema(engine)[0].startswith("CREATE TABLE IF NOT EXISTS jobq_schema")


def test_a_migrated_database_equals_a_fresh_one(db_url: str, old_url: str) -> None:
    jobq.connect(db_url).close()  # fresh: schema.sql
    build_at_version(old_url, 1)
    assert structure(old_url)["version"] == 1
    jobq.connect(old_url).close()  # connect upgrades it
    fresh, migrated = structure(db_url), structure(old_url)
    assert fresh["version"] == migrated["version"] == SCHEMA_VERSION
    assert migrated == fresh
    jobq.connect(old_url).close()  # at the current version: nothing to do
    assert structure(old_url) == fresh


def test_jobs_of_an_old_database_survive_the_upgrade(old_url: str) -> None:
    """A pending job stored at version 1 (with version 1's columns only) is claimed after
    the upgrade, with the defaults of the columns added since: no quotas, priority 0."""
    build_at_version(old_url, 1)
    db = jobq.connect(old_url, migrate=False)
    try:  # the row version 1 code would have put (this code writes columns added since)
        store: Any = db.store
        at = store.driver.to_db_time(db.clock.now())
        mark = "?" if store.engine == "sqlite" else "%s"
        with store._transaction() as ex:
            ex.cursor.execute(
                "INSERT INTO jobq_jobs (queue, status, sort_at, begin_after, call, call_repr, "
                f"created) VALUES ('', 'pending', {mark}, {mark}, {mark}, 'pow(2, 5)', {mark})",
                (at, at, encode_call(db.rows.codec, pow, (2, 5), {}), at),
            )
    finally:
        db.close()
    db = jobq.connect(old_url)
    try:
        claimed = db.store.claim("", str(uuid.uuid4()), "main", 5, db.clock.now())
        assert [r.call_repr for r in claimed] == ["pow(2, 5)"]
        assert claimed[0].quota_names == () and claimed[0].keep_result is None
        assert claimed[0].priority == 0
    finally:
        db.close()


def test_a_newer_database_is_refused(db_url: str) -> None:
    jobq.connect(db_url).close()
    db = jobq.connect(db_url, migrate=False)
    try:
        with db.store._transaction() as ex:  # type: ignore[attr-defined]
            ex.run("update_schema_version", version=SCHEMA_VERSION + 1)
    finally:
        db.close()
    with pytest.raises(jobq.SchemaMismatch, match="newer"):
        jobq.connect(db_url)
