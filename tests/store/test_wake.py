"""Wake-ups. SQLite's (`jobq/store/_wake.py`): an idle worker sleeps on a socket instead of
polling, a put of another process wakes it, sockets of gone processes are cleared, and where
no socket can be made the waiter polls as before. PostgreSQL's NOTIFY: a waiter hears only
its own schema's channel and the queues it serves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import jobfuncs
import psycopg
import pytest
from worker_helpers import pg_parts, subprocess_env

import jobq
from jobq.store import _wake
from jobq.store.sqlite import DataVersionWaiter

SQLITE_ONLY = pytest.mark.parametrize("engine", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_a_put_of_another_process_wakes_a_waiting_worker(
    engine: str, db: jobq.Database, db_url: str
) -> None:
    db.queue()
    waiter = db.store.waiter()
    assert isinstance(waiter, _wake.SocketWaiter)
    folder = _wake.wake_folder(db.store.driver.path)  # type: ignore[attr-defined]
    assert os.listdir(folder) == [os.path.basename(waiter.address)]
    woke: list[bool] = []
    waiting = threading.Thread(target=lambda: woke.append(waiter.wait(60)))
    waiting.start()
    put = subprocess.run(
        [
            sys.executable,
            "-c",
            "import jobq, sys; db = jobq.connect(sys.argv[1]); "
            "db.queue().put(jobq.Job(print, 1)); db.close()",
            db_url,
        ],
        env=subprocess_env(),
        capture_output=True,
        timeout=60,
    )
    assert put.returncode == 0, put.stderr
    waiting.join(60)
    assert woke == [True]  # woken by the put, long before its 60 s were up
    assert waiting.is_alive() is False
    assert not waiter.wait(0.2)  # nothing more committed: no wake-up
    waiter.close()
    assert os.listdir(folder) == []  # its socket goes with it


@SQLITE_ONLY
def test_a_gone_processes_socket_is_cleared_by_the_next_writer(
    engine: str, db: jobq.Database
) -> None:
    folder = _wake.wake_folder(db.store.driver.path)  # type: ignore[attr-defined]
    os.makedirs(folder, exist_ok=True)
    stale = os.path.join(folder, "999999-0.sock")
    left = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    left.bind(stale)
    left.close()  # as a SIGKILLed worker leaves it: the file, no one reading
    sender = _wake.WakeSender(folder)
    sender.send()
    sender.close()
    assert not os.path.exists(stale)


def test_a_path_too_long_for_a_socket_uses_the_temporary_folder(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 90) / "jobq.db"
    folder = _wake.wake_folder(str(deep))
    assert os.path.dirname(folder) == tempfile.gettempdir()
    assert os.path.basename(folder).startswith("jobq-wake-")
    assert folder == _wake.wake_folder(str(deep))  # every process finds the same one
    short = tempfile.mkdtemp(prefix="jq")  # tmp_path itself may be too deep (pytest-xdist)
    try:
        assert _wake.wake_folder(f"{short}/jobq.db") == f"{short}/jobq.db-wake"
    finally:
        os.rmdir(short)


@SQLITE_ONLY
def test_where_no_socket_can_be_made_the_waiter_polls(
    engine: str, db: jobq.Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setattr("jobq.store.sqlite.wake_folder", lambda path: str(not_a_folder / "wake"))
    waiter = db.store.waiter()
    try:
        assert isinstance(waiter, DataVersionWaiter)
        with jobq.connect(f"sqlite:///{db.store.driver.path}") as other:  # type: ignore[attr-defined]
            other.queue().put(jobq.Job(print, 1))
        assert waiter.wait(10)
    finally:
        waiter.close()


def test_a_postgres_waiter_hears_only_its_schema_and_its_queues(db_url: str) -> None:
    """NOTIFY reaches every session of the database: a worker must not wake (and claim) for
    puts of another schema's jobq (another application, another test) or of queues it does
    not serve."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's NOTIFY (SQLite's wake sockets are per database file)")
    other_url = f"{pg_parts(db_url)[0]}?schema=jobq_test_other_{uuid.uuid4().hex[:8]}"
    with jobq.connect(db_url) as db, jobq.connect(other_url) as other:
        waiter = db.store.waiter(queues=["served"])
        try:
            assert not waiter.wait(0.1)  # listening now
            other.queue("served").put(jobq.Job(jobfuncs.add, 1, 2))  # another schema
            db.queue("elsewhere").put(jobq.Job(jobfuncs.add, 1, 2))  # a queue not served
            assert not waiter.wait(0.5)
            db.queue("served").put(jobq.Job(jobfuncs.add, 1, 2))
            assert waiter.wait(5.0)
        finally:
            waiter.close()
        everything = db.store.waiter()  # no queues given: any queue of this schema
        try:
            assert not everything.wait(0.1)
            db.queue("elsewhere").put(jobq.Job(jobfuncs.add, 1, 2))
            assert everything.wait(5.0)
        finally:
            everything.close()
    with psycopg.connect(pg_parts(db_url)[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{pg_parts(other_url)[1]}" CASCADE')


@SQLITE_ONLY
def test_commits_without_wake_ups_are_seen_once_a_slow_check(
    engine: str, db: jobq.Database
) -> None:
    """A worker's own connections commit all the time while it drains (its starts, its
    outcomes), which changes what its waiter reads in `data_version` but sends no wake-up:
    the waiter sees those at its slow check, at most once per SLOW_CHECK, instead of waking
    its dispatcher for each (thousands of idle rounds a second before)."""
    path = db.store.driver.path  # type: ignore[attr-defined]
    waiter = db.store.waiter()
    writes = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('CREATE TABLE IF NOT EXISTS app_rows (x INTEGER)')\n"
        "while True:\n"
        "    conn.execute('INSERT INTO app_rows VALUES (1)')\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", writes, path])
    try:
        assert waiter.wait(10)  # its first commits
        seen, started = 0, time.monotonic()
        while time.monotonic() - started < 0.5:
            seen += waiter.wait(0.2)
            time.sleep(0.002)  # the dispatcher's round, during which the writer commits
        elapsed = time.monotonic() - started
        assert writer.poll() is None  # it committed all along
    finally:
        writer.kill()
        writer.wait(10)
        waiter.close()
    assert 1 <= seen <= elapsed / _wake.SLOW_CHECK + 2
