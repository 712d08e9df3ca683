"""`jobq demo` and `jobq bench`: the demo run and the benchmark (each imported when run)."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option(
    "--db", "url", envvar="JOBQ_DB", default=None, help="Default: a fresh ./jobq-demo.db."
)
@click.option("--jobs", default=12, show_default=True, help="How many report jobs to put.")
def demo(url: str | None, jobs: int) -> None:
    """Put jobs, run a worker process, and show what happens."""
    from jobq.demo import run_demo

    sys.exit(run_demo(url, jobs))


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Run the benchmark (same options as `python -m jobq.bench --help`)."""
    from jobq.bench.__main__ import main as bench_main

    sys.exit(bench_main(list(args)))


COMMANDS = [demo, bench]
