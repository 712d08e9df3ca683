"""`jobq worker`: run a worker (dispatcher), or N of them under a supervisor (`--processes`).

A worker process loads only what it runs: no rich, no web framework, and the HTTP server of
its monitor port only with `--monitor-port`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import uuid as uuid_module
from collections.abc import Callable
from typing import Any, Protocol

import click

import jobq
from jobq.cli.common import db_option
from jobq.cli.imports import use_import_paths, warn_unimportable
from jobq.cli.log_output import configure_logging
from jobq.errors import ConfigError, StoreFull
from jobq.model.failure import DEFAULT_REDACT
from jobq.model.limits import check_grace, check_limit
from jobq.monitor.filters import parse_interval
from jobq.worker.agent import AgentSpec
from jobq.worker.loops import FULL_WARNING_EVERY
from jobq.worker.timeouts import RUNAWAY_EXIT

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

events_log = logging.getLogger("jobq.events")


def _connect_when_there_is_room(url: str | None) -> jobq.Database:
    """`jobq.connect(url)`, waiting while the database's disk is full (a warning a minute)
    instead of failing at start: the worker then starts by itself once there is room. A stop
    signal meanwhile ends the process."""
    # The handler runs on this thread, between any two of its steps: it only records the
    # signal (an Event's set could wait for the lock this thread holds in its wait).
    signals: list[int] = []
    handlers = {
        sig: signal.signal(sig, lambda signum, _: signals.append(signum)) for sig in STOP_SIGNALS
    }
    said_at = -FULL_WARNING_EVERY
    try:
        while True:
            try:
                return jobq.connect(url)
            except StoreFull as error:
                if time.monotonic() - said_at >= FULL_WARNING_EVERY:
                    said_at = time.monotonic()
                    events_log.warning(
                        "cannot open the database: %s; waiting for room (said once a minute)",
                        error,
                    )
                for _ in range(10):
                    if signals:
                        raise SystemExit(0) from None
                    time.sleep(0.1)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


class Stoppable(Protocol):
    """What `run_until_signalled` runs: a loop that returns once asked to stop."""

    def run(self) -> None: ...

    def request_stop(self) -> None: ...


def run_until_signalled(
    loop: Stoppable, prepare: Callable[[], None] | None = None, poll: float = 0.2
) -> None:
    """`prepare()`, then run `loop` on a thread of its own until it returns; SIGTERM or SIGINT
    asks it to stop (one during `prepare` is kept, and the loop is not started).

    Python runs a signal handler on the main thread between any two of its steps, so this
    thread only waits: run there, the loop could be holding the very lock the handler's
    `request_stop` takes (its wake event's), and the worker would never stop; during
    `prepare` the handler only records the signal, for the same reason. The wait is in
    `poll`-second slices because a signal the kernel delivers to another thread does not
    interrupt it. An error that ends the loop is raised here.
    """
    errors: list[BaseException] = []
    signals: list[int] = []
    loop_started = False

    def run() -> None:
        try:
            loop.run()
        except BaseException as error:  # re-raised on the main thread, for the exit code
            errors.append(error)

    def on_signal(signum: int, frame: Any) -> None:
        signals.append(signum)
        if loop_started:  # this thread now only waits: it holds none of the loop's locks
            events_log.info("signal %d: stopping", signum)
            loop.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        if prepare is not None:
            prepare()
        if signals:
            events_log.info("signal %d: stopping", signals[0])
            return
        thread = threading.Thread(target=run, name="jobq-dispatcher")
        thread.start()
        loop_started = True
        if signals:  # came between the check above and the flag: told the loop nothing yet
            events_log.info("signal %d: stopping", signals[0])
            loop.request_stop()
        while thread.is_alive():
            thread.join(poll)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if errors:
        raise errors[0]


@click.command()
@db_option
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
@click.option(
    "--ping-interval", default=5.0, show_default=True, help="Seconds between liveness pings."
)
@click.option(
    "--death-interval",
    default=30.0,
    show_default=True,
    help="A dispatcher silent this long is presumed dead and its jobs are handed on.",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
@click.option(
    "--path",
    "paths",
    multiple=True,
    envvar="JOBQ_PATH",
    type=click.Path(exists=True, file_okay=False, resolve_path=True),
    help="A folder to import job code from, after the current directory (repeatable; env "
    "JOBQ_PATH, folders separated by os.pathsep).",
)
@click.option(
    "--import-retries",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="A job whose code this worker cannot import is put back for a worker that can; "
    "after this many such put-backs (by any worker), it fails with the reason.",
)
@click.option(
    "--monitor-port",
    type=int,
    default=None,
    help="Serve this worker's status (/status, JSON) and metrics (/metrics) on 127.0.0.1:PORT.",
)
@click.option(
    "--retention",
    default="7D",
    show_default=True,
    help="Keep completed jobs this long ([nD][nH][nM][nS]) before pruning; 'off' keeps all "
    "(but jobs put with keep_result still expire).",
)
@click.option(
    "--prune-interval",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds between this worker's pruning runs (retention and keep_result expiry).",
)
@click.option(
    "--traceback-locals/--no-traceback-locals",
    envvar="JOBQ_TRACEBACK_LOCALS",
    default=False,
    show_default=True,
    help="Record each frame's locals in a failed job's traceback (logged, stored and shown on "
    "the dashboard; env JOBQ_TRACEBACK_LOCALS=1). Off by default: locals hold secrets.",
)
@click.option(
    "--redact-locals",
    envvar="JOBQ_REDACT_LOCALS",
    default=DEFAULT_REDACT,
    show_default=True,
    help="With --traceback-locals: a regular expression (case-insensitive) of local names "
    "recorded as <redacted>.",
)
@click.option(
    "--job-timeout",
    type=float,
    default=None,
    help="Seconds a job put without its own timeout may run: then its stop is requested, and "
    "after the grace period its attempt is taken away and it fails with jobq.JobTimeout "
    "through its retry policy. Default: no limit.",
)
@click.option(
    "--timeout-grace",
    type=float,
    default=None,
    help="Seconds a job past its time limit gets to end once its stop is requested (at most "
    "--job-timeout). Default: a tenth of its limit, at most 30.",
)
@click.option("--exit-on-runaway", is_flag=True, hidden=True)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run N worker processes under one supervisor (for CPU-bound jobs); each gets its own "
    "UUID (derived from --uuid when given) and is restarted if it dies. With --monitor-port P, "
    "process i serves P+i.",
)
def worker(
    url: str | None,
    queues: tuple[str, ...],
    agents: tuple[str, ...],
    uuid: str | None,
    poll_interval: float,
    grace: float,
    ping_interval: float,
    death_interval: float,
    log_level: str,
    monitor_port: int | None,
    retention: str,
    prune_interval: float,
    processes: int,
    paths: tuple[str, ...],
    traceback_locals: bool,
    redact_locals: str,
    import_retries: int,
    job_timeout: float | None,
    timeout_grace: float | None,
    exit_on_runaway: bool,
) -> None:
    """Run a worker (dispatcher) until SIGTERM or SIGINT.

    Job code is imported as `python -c` would from the folder the worker starts in: the
    current directory comes first on sys.path, then each --path DIR (or JOBQ_PATH)."""
    configure_logging(log_level)
    use_import_paths(paths)
    if processes > 1:
        from jobq.worker.supervisor import supervise

        def options_for(slot: int) -> list[str]:
            options = [
                *(("--db", url) if url else ()),
                *(a for q in queues for a in ("--queue", q)),
            ]
            options += [a for agent in agents for a in ("--agent", agent)]
            options += ["--poll-interval", str(poll_interval), "--grace", str(grace)]
            options += ["--ping-interval", str(ping_interval)]
            options += ["--death-interval", str(death_interval), "--log-level", log_level]
            options += ["--retention", retention, "--redact-locals", redact_locals]
            options += ["--traceback-locals"] if traceback_locals else []
            options += ["--retention", retention, "--import-retries", str(import_retries)]
            options += ["--prune-interval", str(prune_interval)]
            options += [a for p in paths for a in ("--path", p)]  # children start in this cwd
            if job_timeout is not None:
                options += ["--job-timeout", repr(job_timeout)]
            if timeout_grace is not None:
                options += ["--timeout-grace", repr(timeout_grace)]
            options += ["--exit-on-runaway"]  # a runaway thread: the child is replaced
            if monitor_port is not None:
                options += ["--monitor-port", str(monitor_port + slot)]
            return options

        try:
            for agent in agents:  # bad options fail here, not in N children
                AgentSpec.parse(agent)
            if uuid is not None:
                uuid = str(uuid_module.UUID(uuid))
            _check_limits(job_timeout, timeout_grace)
        except (ConfigError, ValueError) as error:
            raise click.BadParameter(str(error)) from error
        sys.exit(supervise(options_for, processes, uuid, grace=grace))
    try:
        _check_limits(job_timeout, timeout_grace)
        specs = [AgentSpec.parse(a) for a in agents] or None
        db = _connect_when_there_is_room(url)
        dispatcher = db.worker(
            queues=list(queues) or [""],
            agents=specs,
            uuid=uuid,
            poll_interval=poll_interval,
            ping_interval=ping_interval,
            death_interval=death_interval,
            grace=grace,
            traceback_locals=traceback_locals,
            redact_locals=redact_locals,
            import_retries=import_retries,
            job_timeout=job_timeout,
            timeout_grace=timeout_grace,
        )
        dispatcher.exit_on_runaway = exit_on_runaway
        dispatcher.retention.keep = None if retention == "off" else parse_interval(retention)
        dispatcher.retention.every = prune_interval
    except (ConfigError, ValueError) as error:
        raise click.BadParameter(str(error)) from error

    monitor: Any = None

    def prepare() -> None:
        """Before the loop starts: say where the job code comes from, warn of pending jobs
        this worker cannot import, open the monitor port if asked."""
        nonlocal monitor
        # One log record (the dispatcher logs its UUID and queues when it activates): an
        # echo here besides said the start twice, and not in the log's format.
        first = sys.path[: 1 + len(paths)]
        events_log.info(
            "worker (pid %d) on %r, importing job code from %s first", os.getpid(), db, first
        )
        try:
            warn_unimportable(db.store, dispatcher.queues, db.clock.now())
        except Exception as error:  # advisory only: e.g. the database is not reachable yet
            events_log.warning("cannot check the pending jobs' imports: %r", error)
        if monitor_port is not None:
            from jobq.monitor.worker_server import WorkerMonitorServer  # http.server: if asked

            monitor = WorkerMonitorServer(dispatcher, monitor_port)
            monitor.start()

    try:
        run_until_signalled(dispatcher, prepare)
    finally:
        if monitor is not None:
            monitor.close()
        db.close()
    if dispatcher.runaway:
        # A thread still runs a job taken away after its time limit: it cannot be stopped, so
        # the process ends now (nothing of it runs on) and its supervisor replaces it.
        logging.shutdown()
        os._exit(RUNAWAY_EXIT)


def _check_limits(job_timeout: float | None, timeout_grace: float | None) -> None:
    """Refuse a bad --job-timeout or --timeout-grace before any worker process starts."""
    grace = None if timeout_grace is None else check_grace(timeout_grace, "--timeout-grace")
    if job_timeout is not None:
        check_limit(job_timeout, grace, "--job-timeout", "--timeout-grace")


COMMANDS = [worker]
