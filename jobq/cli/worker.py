"""`jobq worker`: run a worker (dispatcher), or N of them under a supervisor (`--processes`).

A worker process loads only what it runs: no rich, no web framework, and the HTTP server of
its monitor port only with `--monitor-port`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
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


class StopSignals:
    """SIGTERM and SIGINT to this process, from `install()` until it exits: the handler only
    records them, and the main thread acts on what was recorded (`wait` wakes it).

    Python runs a handler on the main thread between any two of its steps, even inside
    another handler (two signals close together): one that took a lock, as setting an Event
    or writing a log line does, could wait for ever for a lock its own thread holds. The
    handlers stay installed to the end, so that a signal during the shutdown that follows the
    loop is recorded rather than fatal."""

    def __init__(self) -> None:
        self.received: list[int] = []  # list.append: no lock, safe in a handler
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)

    def install(self) -> None:
        """Record the stop signals from now on (on the main thread)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._record)
        # The C-level handler writes a byte here, waking `wait` whichever thread the kernel
        # gave the signal to.
        signal.set_wakeup_fd(self._wake_write.fileno(), warn_on_full_buffer=False)

    def _record(self, signum: int, frame: Any) -> None:
        self.received.append(signum)

    def wake(self) -> None:
        """Wake `wait` from another thread."""
        with contextlib.suppress(OSError):
            self._wake_write.send(b"\0")

    def wait(self, timeout: float) -> None:
        """Until a signal comes or `wake()` is called, at most `timeout` seconds."""
        select.select([self._wake_read], [], [], timeout)
        with contextlib.suppress(OSError):  # BlockingIOError once it is empty
            while self._wake_read.recv(256):
                pass


def _connect_when_there_is_room(url: str | None, signals: StopSignals) -> jobq.Database:
    """`jobq.connect(url)`, waiting while the database's disk is full (a warning a minute)
    instead of failing at start: the worker then starts by itself once there is room. A stop
    signal meanwhile ends the process."""
    said_at = -FULL_WARNING_EVERY
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
            if not signals.received:
                signals.wait(1.0)
            if signals.received:
                raise SystemExit(0) from None


class Stoppable(Protocol):
    """What `run_until_signalled` runs: a loop that returns once asked to stop."""

    def run(self) -> None: ...

    def request_stop(self) -> None: ...


def run_until_signalled(
    loop: Stoppable,
    signals: StopSignals,
    prepare: Callable[[], None] | None = None,
    poll: float = 1.0,
) -> None:
    """`prepare()`, then run `loop` on a thread of its own until it returns, asking it to stop
    at each stop signal `signals` records; one recorded before the loop starts (during
    `prepare`, or earlier) keeps it from starting. An error that ends the loop is raised here.

    The loop runs off the main thread and `request_stop` is called outside any signal
    handler: run on the main thread, with the handler calling `request_stop`, a signal
    arriving while the loop held its wake event's lock left the worker waiting for ever."""
    if prepare is not None:
        prepare()
    if signals.received:
        events_log.info("signal %d: stopping", signals.received[0])
        return
    errors: list[BaseException] = []
    ended: list[bool] = []

    def run() -> None:
        try:
            loop.run()
        except BaseException as error:  # re-raised on the main thread, for the exit code
            errors.append(error)
        finally:
            ended.append(True)
            signals.wake()

    thread = threading.Thread(target=run, name="jobq-dispatcher")
    thread.start()
    told = 0
    while not ended:
        signals.wait(poll)
        while told < len(signals.received):
            events_log.info("signal %d: stopping", signals.received[told])
            told += 1
            loop.request_stop()
    thread.join()
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
        signals = StopSignals()
        signals.install()
        db = _connect_when_there_is_room(url, signals)
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
        run_until_signalled(dispatcher, signals, prepare)
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
