"""The SQL text of each engine, read from `sql/<engine>/`: its named queries, its schema, its
numbered migrations, and `migrate`, which brings a database to `SCHEMA_VERSION`."""

from __future__ import annotations

import re
from importlib import resources

from jobq.errors import SchemaMismatch
from jobq.store.driver import Driver

SCHEMA_VERSION = 12  # the highest numbered file in sql/<engine>/migrations/


_ALIASED = re.compile(r"/\*(_\w+):(\w+)\*/")


def load_queries(engine: str) -> dict[str, str]:
    """Read `sql/<engine>/queries.sql` and `monitor.sql` into {name: sql}, split on `-- name:`
    headers. A block named `_x` is a fragment, pasted where a query says `/*_x*/`; a list of
    columns is pasted with a table alias `a` where it says `/*_x:a*/` (each column as `a.c`)."""
    folder = resources.files("jobq.store").joinpath(f"sql/{engine}")
    text = "\n".join(folder.joinpath(f).read_text() for f in ("queries.sql", "monitor.sql"))
    queries: dict[str, str] = {}
    name = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("-- name:"):
            if name:
                queries[name] = "\n".join(lines).strip()
            name, lines = line.split(":", 1)[1].strip(), []
        elif name and not line.startswith("--"):
            lines.append(line)
    if name:
        queries[name] = "\n".join(lines).strip()
    fragments = {k: v.rstrip(";") for k, v in queries.items() if k.startswith("_")}
    for key, fragment in fragments.items():
        queries = {k: v.replace(f"/*{key}*/", fragment) for k, v in queries.items()}

    def aliased(match: re.Match[str]) -> str:
        columns = fragments[match.group(1)].split(",")
        return ", ".join(f"{match.group(2)}.{column.strip()}" for column in columns)

    queries = {k: _ALIASED.sub(aliased, v) for k, v in queries.items()}
    return {k: v.rstrip(";") for k, v in queries.items() if not k.startswith("_")}


def _statements(text: str) -> list[str]:
    body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def load_schema(engine: str) -> list[str]:
    """The statements of `sql/<engine>/schema.sql`: the whole current schema, for a fresh
    database."""
    return _statements(
        resources.files("jobq.store").joinpath(f"sql/{engine}/schema.sql").read_text()
    )


def load_migrations(engine: str) -> list[tuple[int, list[str]]]:
    """`sql/<engine>/migrations/NNNN_description.sql`, as (NNNN, statements), in order.
    Migration N takes a database from schema version N - 1 to N (0001 is the initial schema);
    a released migration is never edited."""
    folder = resources.files("jobq.store").joinpath(f"sql/{engine}/migrations")
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), _statements(entry.read_text())))
    found.sort()
    return found


def _current_version(driver: Driver) -> int | None:
    """The schema version a read finds, or None if there is no jobq schema (yet) to read."""
    try:
        with driver.read() as ex:
            row = ex.one("schema_version")
    except Exception:  # no jobq_schema table (a fresh database): the migration creates it
        return None
    return None if row is None else int(row["version"])


def migrate(driver: Driver) -> None:
    """Create the schema (a fresh database: `schema.sql`, at SCHEMA_VERSION), or bring an
    older one up to date by applying the numbered migrations above its version, in order,
    in one transaction. A database already at SCHEMA_VERSION is only read: opening one
    never waits behind another connection's write (SQLite's lock)."""
    if _current_version(driver) == SCHEMA_VERSION:
        return
    driver.create_namespace()
    with driver.transaction() as ex:
        driver.migrate_lock(ex)
        statements = load_schema(driver.engine)
        ex.raw(statements[0])  # jobq_schema itself, so that its version can be read
        row = ex.one("schema_version")
        if row is None:
            for statement in statements[1:]:
                ex.raw(statement)
            ex.run("set_schema_version", version=SCHEMA_VERSION)
            return
        version = int(row["version"])
        if version > SCHEMA_VERSION:
            raise SchemaMismatch(
                f"database schema version {version} is newer than this jobq "
                f"understands ({SCHEMA_VERSION}); upgrade jobq"
            )
        if version == SCHEMA_VERSION:
            return
        for number, migration in load_migrations(driver.engine):
            if version < number <= SCHEMA_VERSION:
                for statement in migration:
                    ex.raw(statement)
        ex.run("update_schema_version", version=SCHEMA_VERSION)
