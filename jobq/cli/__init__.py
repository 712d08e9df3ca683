"""The `jobq` command (`jobq = "jobq.cli:main"`, and `python -m jobq`), by topic:

- `worker`: run workers, alone or under a supervisor;
- `monitor`: the read commands (status, jobs, job, dispatchers, quotas, worker-status...);
- `admin`: the operator actions (cancel, retry, pause, agent-*, quota-*, prune) and `db`;
- `schedules`: list and change cron schedules (`jobq schedules`, `jobq schedule ...`);
- `dashboard`: serve the web dashboard;
- `demo`: the demo and the benchmark;
- `common` and `tables`: the shared options and error handling, and the rich rendering.

Loading the CLI imports neither rich nor the web stack: a `jobq worker` process stays lean.
"""

from __future__ import annotations

import click

from jobq.cli import admin, dashboard, demo, monitor, schedules, worker
from jobq.cli.common import DB_HELP


@click.group()
@click.version_option(package_name="jobq")
@click.option("--db", "url", default=None, help=DB_HELP + " Also accepted after the command.")
@click.pass_context
def main(ctx: click.Context, url: str | None) -> None:
    """jobq: durable Python jobs on SQLite or PostgreSQL."""
    ctx.obj = {"db": url}


for _topic in (worker, demo, admin, monitor, schedules, dashboard):
    for _command in _topic.COMMANDS:
        main.add_command(_command)
