"""Unique jobs with real processes, on both engines: several producer processes put the same
keys at once (tests/support/unique_producer.py), first with no worker (exactly one job per
key), then with a worker process running them: at no moment do two jobs hold one key, and
every job made is one a producer was told it created."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from worker_helpers import SUPPORT, execute, subprocess_env, wait_until

import jobq

PRODUCERS = 4
KEYS = 10

HELD = (
    "SELECT unique_key, count(*) FROM jobq_jobs WHERE unique_key IS NOT NULL"
    " AND status IN ('pending', 'assigned', 'active') GROUP BY unique_key HAVING count(*) > 1"
)


def producers(db_url: str, tmp_path: Path, rounds: int, tag: str) -> list[subprocess.Popen[bytes]]:
    start = tmp_path / f"start-{tag}"
    spawned = [
        subprocess.Popen(
            [
                sys.executable,
                str(Path(SUPPORT) / "unique_producer.py"),
                db_url,
                str(start),
                str(tmp_path / f"out-{tag}-{i}.json"),
                str(rounds),
                str(KEYS),
            ],
            env=subprocess_env(),
        )
        for i in range(PRODUCERS)
    ]
    start.touch()  # all of them begin at once
    return spawned


def results(tmp_path: Path, tag: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads((tmp_path / f"out-{tag}-{i}.json").read_text()) for i in range(PRODUCERS)]


def finish(spawned: list[subprocess.Popen[bytes]]) -> None:
    for process in spawned:
        assert process.wait(120) == 0


def test_concurrent_producers_make_one_job_per_key(db_url: str, tmp_path: Path) -> None:
    jobq.connect(db_url).close()  # the schema, before the producers race for it
    finish(producers(db_url, tmp_path, rounds=1, tag="a"))
    made = results(tmp_path, "a")
    rows = execute(db_url, "SELECT unique_key, count(*) FROM jobq_jobs GROUP BY unique_key")
    assert sorted(rows) == sorted((f"k{k}", 1) for k in range(KEYS))
    assert sum(len(r["created"]) for r in made) == KEYS
    assert sum(r["outcomes"].get("existing", 0) for r in made) == PRODUCERS * 2 * KEYS - KEYS


def test_with_a_worker_running_no_two_jobs_ever_hold_a_key(db_url: str, tmp_path: Path) -> None:
    jobq.connect(db_url).close()
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "jobq", "worker", "--db", db_url, "--uuid", str(uuid.uuid4()),
             "--poll-interval", "0.05", "--log-level", "WARNING"],
            env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    doubles: list[object] = []
    done = threading.Event()

    def watch() -> None:  # what a reader sees while producers and the worker go on
        while not done.is_set():
            doubles.extend(execute(db_url, HELD))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        spawned = producers(db_url, tmp_path, rounds=0, tag="b")
        # Until the worker has completed jobs enough for keys to have been taken again.
        wait_until(
            lambda: (
                execute(db_url, "SELECT count(*) FROM jobq_jobs WHERE status = 'completed'")[0][0]
                >= 3 * KEYS
            ),
            timeout=60,
            what="keys released by completed jobs and taken again",
        )
        (tmp_path / "start-b.stop").touch()
        finish(spawned)
        made = results(tmp_path, "b")
        created = sorted(i for r in made for i in r["created"])
        assert len(created) == len(set(created))
        # Every job stored is one a producer was told it created, and the worker runs them all.
        ids = sorted(r[0] for r in execute(db_url, "SELECT id FROM jobq_jobs"))
        assert ids == created
        assert len(created) > KEYS  # keys were released by completions and taken again
        wait_until(
            lambda: not execute(db_url, "SELECT 1 FROM jobq_jobs WHERE status <> 'completed'"),
            timeout=60,
            what="the worker ran every job",
        )
    finally:
        done.set()
        watcher.join()
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert doubles == []
    assert worker.returncode == 0, log.read_text()
