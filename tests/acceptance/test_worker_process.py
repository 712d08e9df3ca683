"""Real `python -m jobq worker` processes on both engines: they run the jobs put from here,
share the work so that every job runs exactly once, and stop gracefully on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jobfuncs import add, fail, sleep_then, sleep_then_insert
from worker_helpers import (
    app_rows,
    create_app_table,
    execute,
    sqlite_path,
    subprocess_env,
    wait_until,
)

import jobq
from jobq.store._wake import wake_folder

pytestmark = pytest.mark.slow

WAIT = 30.0


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], uuid: str, log: Path) -> None:
        self.proc = proc
        self.uuid = uuid
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def spawn(db_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start worker processes; each is waited for until its dispatcher is activated.
    Any still running at the end of the test is killed."""
    started: list[WorkerProcess] = []

    def start(*extra: str) -> WorkerProcess:
        ident = str(uuid.uuid4())
        log = tmp_path / f"worker-{ident[:8]}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "jobq", "worker", "--db", db_url, "--uuid", ident),
                    *("--poll-interval", "0.1", *extra),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=subprocess_env(),
            )
        worker = WorkerProcess(proc, ident, log)
        started.append(worker)

        def activated() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"worker exited early:\n{worker.output()}")
            rows = _dispatcher_rows(db_url, ident)
            return bool(rows) and rows[0][0] is not None

        wait_until(activated, timeout=WAIT, what=f"worker {ident} to activate")
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(10)


def _dispatcher_rows(db_url: str, ident: str) -> list[tuple[Any, ...]]:
    try:
        return execute(db_url, "SELECT activated FROM jobq_dispatchers WHERE uuid = ?", (ident,))
    except Exception:  # the table may not exist yet while the worker migrates
        return []


def _stop(worker: WorkerProcess) -> int:
    worker.proc.send_signal(signal.SIGTERM)
    try:
        return worker.proc.wait(WAIT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"worker did not stop on SIGTERM:\n{worker.output()}") from None


def test_worker_process_runs_jobs(db: jobq.Database, spawn: Callable[..., WorkerProcess]) -> None:
    worker = spawn()
    jobs = [db.queue().put(jobq.Job(add, i, i)) for i in range(20)]
    assert [job.wait(timeout=WAIT) for job in jobs] == [2 * i for i in range(20)]
    assert {job.dispatcher_uuid for job in jobs} == {worker.uuid}
    assert _stop(worker) == 0, worker.output()


def test_at_the_default_level_a_job_logs_one_line_for_its_outcome(
    db: jobq.Database, spawn: Callable[..., WorkerProcess]
) -> None:
    worker = spawn()  # the default --log-level (INFO), as a deployed worker has it
    jobs = [db.queue().put(jobq.Job(add, i, 1)) for i in range(10)]
    assert [job.wait(timeout=WAIT) for job in jobs] == [i + 1 for i in range(10)]
    assert _stop(worker) == 0, worker.output()
    lines = worker.output().splitlines()
    for job in jobs:
        about_it = [line for line in lines if f"job {job.id} (jobfuncs.add(" in line]
        assert len(about_it) == 1, about_it
        assert " INFO " in about_it[0] and f"succeeded with result: {job.result}" in about_it[0]


def test_outcome_lines_reach_the_log_while_the_worker_runs_in_the_order_logged(
    db: jobq.Database, spawn: Callable[..., WorkerProcess]
) -> None:
    """The worker writes its INFO lines in batches (jobq.cli.log_output): they still reach
    the log file within moments, not only at exit, and a failure's ERROR line (written at
    once) comes after the lines logged before it."""
    worker = spawn()
    jobs = [db.queue().put(jobq.Job(add, i, 1)) for i in range(5)]
    assert [job.wait(timeout=WAIT) for job in jobs] == [i + 1 for i in range(5)]

    def logged(job_id: int) -> bool:
        return f"job {job_id} (" in worker.output()

    wait_until(lambda: all(logged(job.id) for job in jobs), timeout=WAIT, what="INFO lines")
    failing = db.queue().put(jobq.Job(fail, "on purpose"))
    wait_until(lambda: logged(failing.id), timeout=WAIT, what="the failure's line")
    assert worker.proc.poll() is None, worker.output()  # written while it runs, not at exit
    lines = [line for line in worker.output().splitlines() if " jobq." in line]
    about = {
        job.id: i
        for i, line in enumerate(lines)
        for job in [*jobs, failing]
        if f"job {job.id} (" in line
    }
    assert " ERROR " in lines[about[failing.id]] and "on purpose" in lines[about[failing.id]]
    assert max(about[job.id] for job in jobs) < about[failing.id]
    assert _stop(worker) == 0, worker.output()


def test_worker_process_serves_named_queues_with_agents(
    db: jobq.Database, spawn: Callable[..., WorkerProcess]
) -> None:
    worker = spawn("--queue", "reports", "--agent", "small:1", "--agent", "big:2")
    reports = [db.queue("reports").put(jobq.Job(add, i, 1)) for i in range(6)]
    elsewhere = db.queue("other").put(jobq.Job(add, 0, 0))
    assert [job.wait(timeout=WAIT) for job in reports] == [i + 1 for i in range(6)]
    assert {job.agent_name for job in reports} <= {"small", "big"}
    assert elsewhere.refresh().status == jobq.Status.PENDING
    assert _stop(worker) == 0, worker.output()


def test_two_worker_processes_run_every_job_exactly_once(
    db: jobq.Database, db_url: str, spawn: Callable[..., WorkerProcess]
) -> None:
    create_app_table(db_url)
    workers = [spawn("--agent", "main:2"), spawn("--agent", "main:2")]
    values = [f"job-{i}" for i in range(40)]
    jobs = db.queue().put_many([jobq.Job(sleep_then_insert, value, 0.05) for value in values])
    assert [job.wait(timeout=WAIT) for job in jobs] == values
    rows = app_rows(db_url)
    assert Counter(rows) == Counter(values)  # each job's write happened exactly once
    assert all(job.attempt == 1 for job in jobs)
    assert {job.dispatcher_uuid for job in jobs} == {w.uuid for w in workers}
    for worker in workers:
        assert _stop(worker) == 0, worker.output()


def test_sigterm_stops_gracefully(
    db: jobq.Database, db_url: str, spawn: Callable[..., WorkerProcess]
) -> None:
    worker = spawn()
    running = db.queue().put(jobq.Job(sleep_then, 1.0, "finished"))
    wait_until(lambda: running.refresh().status == jobq.Status.ACTIVE, what="the job to start")
    assert _stop(worker) == 0, worker.output()
    # The running job was allowed to finish; the dispatcher is deactivated.
    assert running.refresh().status == jobq.Status.COMPLETED, worker.output()
    assert running.result == "finished"
    assert _dispatcher_rows(db_url, worker.uuid) == [(None,)]
    # Jobs put after the stop stay pending: nobody serves the queue any more.
    later = db.queue().put(jobq.Job(add, 1, 1))
    with pytest.raises(jobq.WaitTimeout):
        later.wait(timeout=0.5)
    assert later.status == jobq.Status.PENDING


def test_a_stopped_sqlite_worker_leaves_no_wake_socket(
    db: jobq.Database, db_url: str, spawn: Callable[..., WorkerProcess]
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("wake sockets are SQLite's (PostgreSQL has NOTIFY)")
    worker = spawn()
    folder = Path(wake_folder(sqlite_path(db_url)))
    mine = f"{worker.proc.pid}-"
    wait_until(
        lambda: folder.is_dir() and any(n.startswith(mine) for n in os.listdir(folder)),
        timeout=WAIT,
        what="the worker's wake socket",
    )
    assert _stop(worker) == 0, worker.output()
    assert not [n for n in os.listdir(folder) if n.startswith(mine)]


def test_sigint_stops_an_idle_worker(
    db: jobq.Database, db_url: str, spawn: Callable[..., WorkerProcess]
) -> None:
    worker = spawn()
    worker.proc.send_signal(signal.SIGINT)
    assert worker.proc.wait(WAIT) == 0, worker.output()
    assert _dispatcher_rows(db_url, worker.uuid) == [(None,)]


# `jobq worker`'s signal handling (jobq.cli.worker.run_until_signalled), each case in a process
# of its own: Python runs a signal handler on the main thread between any two of its steps,
# so a handler that took a lock the interrupted code holds would wait for ever.
_SIGNALS = """
import os, signal, sys, threading, time
from jobq.cli.worker import StopSignals, run_until_signalled

case = sys.argv[1]


def say(line):  # one write: the loop's thread and the main thread both say things
    os.write(1, (line + "\\n").encode())


class Loop:
    def __init__(self):
        self.lock = threading.Lock()
        self.stopped = False
        self.signalled = False

    def run(self):
        while True:
            with self.lock:
                if self.stopped:
                    say("stopped on " + threading.current_thread().name)
                    return
                if case == "lock held" and not self.signalled:
                    self.signalled = True
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(0.3)  # the signal is handled meanwhile
            if case == "two signals" and not self.signalled:
                self.signalled = True
                os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)

    def request_stop(self):
        say("asked to stop")
        with self.lock:
            if case == "two signals" and not self.stopped:
                os.kill(os.getpid(), signal.SIGINT)  # a second signal, inside the first's stop
                time.sleep(0.3)
            self.stopped = True


signals = StopSignals()
signals.install()
if case == "while preparing":
    run_until_signalled(Loop(), signals, lambda: os.kill(os.getpid(), signal.SIGTERM))
elif case == "after the loop":
    loop = Loop()
    threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    run_until_signalled(loop, signals)
    os.kill(os.getpid(), signal.SIGTERM)  # as during the worker's shutdown
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
else:
    run_until_signalled(Loop(), signals)
say("returned")
"""


@pytest.mark.parametrize(
    ("case", "printed"),
    [
        # The loop holds the lock its stop takes when the signal comes.
        ("lock held", ["asked to stop", "stopped on jobq-dispatcher", "returned"]),
        # A second signal comes while the first one's stop holds that lock.
        (
            "two signals",
            ["asked to stop", "asked to stop", "stopped on jobq-dispatcher", "returned"],
        ),
        # A signal before the loop starts keeps it from starting.
        ("while preparing", ["returned"]),
        # Signals after the loop ended (the worker shutting down) are not fatal.
        ("after the loop", ["asked to stop", "stopped on jobq-dispatcher", "returned"]),
    ],
)
def test_stop_signals_stop_the_loop_whatever_it_holds(case: str, printed: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SIGNALS, case], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    said = done.stdout.splitlines()  # the loop's end and a later stop may come in any order
    assert (sorted(said), said[-1]) == (sorted(printed), "returned"), done.stdout + done.stderr
