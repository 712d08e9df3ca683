"""Jobs for the time limit tests (tests/integration/test_timeouts.py and
tests/acceptance/test_timeouts_process.py): each tells what it saw in a file of `folder`,
one line per event, so that a test (or a test across processes) can read it."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import jobq
from jobq import local


def note(folder: str, line: str) -> None:
    with open(os.path.join(folder, "events.txt"), "a", encoding="utf-8") as out:
        out.write(line + "\n")


def events(folder: str | Path) -> list[str]:
    path = Path(folder) / "events.txt"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def cooperative(folder: str, most: float = 60.0) -> str:
    """Polls its stop request; returns once it is asked to stop (at its time limit)."""
    deadline = time.monotonic() + most
    while time.monotonic() < deadline:
        if local.stop_requested():
            note(folder, "stop seen")
            return "stopped"
        time.sleep(0.02)
    return "never asked"


def _released(folder: str, most: float) -> None:
    deadline = time.monotonic() + most
    while not os.path.exists(os.path.join(folder, "release")) and time.monotonic() < deadline:
        time.sleep(0.02)


def runaway(folder: str, most: float = 60.0, open_connection: bool = True) -> str:
    """Ignores its stop request: puts a follow-up job (and, with `open_connection`, opens
    its attempt's connection first), then waits until the test creates `folder`/release;
    then tries to write more (an annotation, a put, a statement on its connection) and
    returns. It notes what each late write did."""
    pid = os.getpid()
    note(folder, f"started {pid}")
    conn = local.connection() if open_connection else None
    local.queue().put(jobq.Job(follow_up, folder))
    _released(folder, most)
    note(folder, f"stop requested: {local.stop_requested()}")
    for name, write in (
        ("annotation", lambda: local.set_live_annotation("late", True)),
        ("put", lambda: local.queue().put(jobq.Job(follow_up, folder))),
        ("connection", lambda: local.connection()),
    ):
        try:
            write()
        except Exception as error:
            note(folder, f"{name} refused: {type(error).__name__}")
        else:
            note(folder, f"{name} accepted")
    if conn is not None:
        try:
            conn.execute("SELECT 1")
        except Exception as error:
            note(folder, f"old connection refused: {type(error).__name__}")
        else:
            note(folder, "old connection accepted")
    note(folder, "returning")
    return "late result"


def follow_up(folder: str) -> str:
    """Put by `runaway`: it must never exist."""
    note(folder, "follow-up ran")
    return "follow-up"


def healthy(folder: str, seconds: float) -> str:
    """A job without a limit running beside a runaway."""
    time.sleep(seconds)
    note(folder, "healthy done")
    return "healthy"


async def async_runaway(folder: str) -> str:
    """An async job that ignores its stop request: it is cancelled at its await."""
    try:
        await asyncio.sleep(60)
    finally:
        note(folder, "async finally")
    return "late result"
