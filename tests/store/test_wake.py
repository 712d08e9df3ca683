"""SQLite's wake-ups (`jobq/store/_wake.py`): an idle worker sleeps on a socket instead of
polling, a put of another process wakes it, sockets of gone processes are cleared, and where
no socket can be made the waiter polls as before."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from worker_helpers import subprocess_env

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
    assert _wake.wake_folder(str(tmp_path / "jobq.db")) == f"{tmp_path / 'jobq.db'}-wake"


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
