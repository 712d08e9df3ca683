"""The `jobq` command: run workers, the demo, the benchmark, and schema upgrades."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

import click

import jobq
from jobq.errors import ConfigError
from jobq.worker.agent import AgentSpec

DB_HELP = "Database URL: sqlite:///path.db or postgresql://... (default ./jobq.db; env JOBQ_DB)."


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
    )


@click.group()
@click.version_option(package_name="jobq")
def main() -> None:
    """jobq: durable Python jobs on SQLite or PostgreSQL."""


@main.command()
@click.option("--db", "url", envvar="JOBQ_DB", default=None, help=DB_HELP)
@click.option("--queue", "queues", multiple=True, help="Queue to serve (repeatable; default '').")
@click.option(
    "--agent",
    "agents",
    multiple=True,
    help="NAME:SIZE[:FILTER] for every queue served (repeatable; default main:3). "
    "FILTER is an import path module:function taking the job and answering True to take it.",
)
@click.option("--uuid", envvar="JOBQ_UUID", default=None, help="Dispatcher UUID (env JOBQ_UUID).")
@click.option(
    "--poll-interval", default=1.0, show_default=True, help="Seconds between polls when idle."
)
@click.option(
    "--grace", default=30.0, show_default=True, help="Seconds running jobs get to finish on stop."
)
@click.option("--log-level", default="INFO", show_default=True)
def worker(
    url: str | None,
    queues: tuple[str, ...],
    agents: tuple[str, ...],
    uuid: str | None,
    poll_interval: float,
    grace: float,
    log_level: str,
) -> None:
    """Run a worker (dispatcher) until SIGTERM or SIGINT."""
    _configure_logging(log_level)
    try:
        specs = [AgentSpec.parse(a) for a in agents] or None
        db = jobq.connect(url)
        dispatcher = db.worker(
            queues=list(queues) or [""], agents=specs, uuid=uuid, poll_interval=poll_interval
        )
    except (ConfigError, ValueError) as error:
        raise click.BadParameter(str(error)) from error
    dispatcher.grace = grace

    def request_stop(signum: int, frame: Any) -> None:
        logging.getLogger("jobq.events").info("signal %d: stopping", signum)
        dispatcher.request_stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    click.echo(f"jobq worker {dispatcher.uuid} on {db!r}, queues {dispatcher.queues}", err=True)
    try:
        dispatcher.run()
    finally:
        db.close()


@main.command()
@click.option(
    "--db", "url", envvar="JOBQ_DB", default=None, help="Default: a fresh ./jobq-demo.db."
)
@click.option("--jobs", default=12, show_default=True, help="How many report jobs to put.")
def demo(url: str | None, jobs: int) -> None:
    """Put jobs, run a worker process, and show what happens."""
    from jobq.demo import run_demo

    sys.exit(run_demo(url, jobs))


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Run the benchmark (same options as `python -m jobq.bench --help`)."""
    from jobq.bench.__main__ import main as bench_main

    sys.exit(bench_main(list(args)))


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command()
@click.option("--db", "url", envvar="JOBQ_DB", default=None, help=DB_HELP)
def upgrade(url: str | None) -> None:
    """Create or upgrade jobq's tables."""
    database = jobq.connect(url)
    database.close()
    click.echo("schema is up to date")
