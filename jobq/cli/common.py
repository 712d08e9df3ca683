"""What the `jobq` commands share: the --db, --json and --uuid options, the filter help, and
`opened`, which opens the database as a `Monitor` and turns its errors into click's (a bad
state, filter or argument exits with status 2 and says what was wrong).

`--db` is accepted before the subcommand (`jobq --db URL status`) and after it (`jobq status
--db URL`); the subcommand's value wins, then the group's, then `JOBQ_DB`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from click.core import ParameterSource

from jobq.errors import JobqError
from jobq.monitor.service import Monitor


def call_value(text: str) -> Any:
    """A command-line argument of a job's call: JSON when it is valid JSON (`3`, `true`,
    `[1, 2]`, `"x"`), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def call_kwargs(items: tuple[str, ...]) -> dict[str, Any]:
    """`--kw NAME=VALUE` options as a call's keyword arguments (values as `call_value`)."""
    kwargs: dict[str, Any] = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key.isidentifier():
            raise click.BadParameter(
                f"{item!r}: use NAME=VALUE with NAME a Python identifier", param_hint="--kw"
            )
        kwargs[key] = call_value(value)
    return kwargs


JOB_ID = click.IntRange(min=1, max=2**63 - 1)
"""A job id as the databases store it (64-bit)."""
COUNT = click.IntRange(min=0, max=2**31 - 1)
"""A size, page length or offset: out-of-range numbers are usage errors, not tracebacks."""

DB_HELP = "Database URL: sqlite:///path.db or postgresql://... (default ./jobq.db; env JOBQ_DB)."

FILTER_HELP = (
    "ARGS: states (pending assigned active callbacks, and one of completed succeeded failed), "
    "then filters: callable:GLOB queue:GLOB agent:GLOB uuid:UUID|THIS, and time filters "
    "requested_start: start: end: callbacks_completed: with sinceINTERVAL, beforeINTERVAL or "
    "both joined by a comma (INTERVAL: [nD][nH][nM][nS], e.g. start:since2M end:before1H), "
    "and priority:N, priority:N.., priority:..M or priority:N..M (priorities -10..10)."
)


def quiet_event_log() -> None:
    """A one-shot command prints what it did; without this, Python's last-resort handler would
    print the same event again from the `jobq.events` log (an operator's fail, requeue...).
    Only when nothing configured logging: an application's own handlers keep their records."""
    events = logging.getLogger("jobq.events")
    if not logging.getLogger().handlers and not any(
        isinstance(h, logging.NullHandler) for h in events.handlers
    ):
        events.addHandler(logging.NullHandler())
        events.propagate = False


@contextmanager
def opened(url: str | None, this_uuid: str | None = None) -> Iterator[Monitor]:
    """A `Monitor` over the database at `url`, closed afterwards; ValueError and LookupError
    become usage errors (exit 2), other jobq errors click errors (exit 1)."""
    import jobq

    quiet_event_log()
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


def _db_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The subcommand's own --db, else the group's (`jobq --db URL CMD`), else JOBQ_DB."""
    source = ctx.get_parameter_source(param.name or "url")
    if source is ParameterSource.COMMANDLINE:
        return value
    root = ctx.find_root().obj
    group = root.get("db") if isinstance(root, dict) else None
    return group if group is not None else value


def db_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db", "url", envvar="JOBQ_DB", default=None, help=DB_HELP, callback=_db_value
    )(f)


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
