"""What the `jobq` commands share: the --db, --json and --uuid options, the filter help, and
`opened`, which opens the database as a `Monitor` and turns its errors into click's (a bad
state, filter or argument exits with status 2 and says what was wrong)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from jobq.errors import JobqError
from jobq.monitor.service import Monitor

DB_HELP = "Database URL: sqlite:///path.db or postgresql://... (default ./jobq.db; env JOBQ_DB)."

FILTER_HELP = (
    "ARGS: states (pending assigned active callbacks, and one of completed succeeded failed), "
    "then filters: callable:GLOB queue:GLOB agent:GLOB uuid:UUID|THIS, and time filters "
    "requested_start: start: end: callbacks_completed: with sinceINTERVAL, beforeINTERVAL or "
    "both joined by a comma (INTERVAL: [nD][nH][nM][nS], e.g. start:since2M end:before1H)."
)


@contextmanager
def opened(url: str | None, this_uuid: str | None = None) -> Iterator[Monitor]:
    """A `Monitor` over the database at `url`, closed afterwards; ValueError and LookupError
    become usage errors (exit 2), other jobq errors click errors (exit 1)."""
    import jobq

    try:
        db = jobq.connect(url)
    except (JobqError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    try:
        yield Monitor(db, this_uuid=this_uuid)
    except (ValueError, LookupError) as error:
        raise click.UsageError(str(error)) from error
    except JobqError as error:
        raise click.ClickException(str(error)) from error
    finally:
        db.close()


def db_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--db", "url", envvar="JOBQ_DB", default=None, help=DB_HELP)(f)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def this_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--uuid",
        "this_uuid",
        envvar="JOBQ_UUID",
        default=None,
        help="What uuid:THIS means (env JOBQ_UUID).",
    )(f)
