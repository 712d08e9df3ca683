"""The schedule commands as real `jobq` processes on both engines: add, list, pause, resume,
remove and sync a TOML file, bad input refused with exit status 2 and nothing stored, and a
real worker running a schedule added from the command line, paused while it runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from worker_helpers import subprocess_env, wait_until

import jobq

WAIT = 30.0


def jobq_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobq", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )


def listed(db_url: str) -> list[dict[str, Any]]:
    done = jobq_cli("schedules", "--db", db_url, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_schedules_are_added_listed_paused_resumed_and_removed(db_url: str) -> None:
    done = jobq_cli(
        "schedule", "add", "nightly", "0 3 * * *", "jobfuncs:add", "1", "2", "--db", db_url,
        "--timezone", "Europe/Berlin", "--queue", "reports", "--missed", "once", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    assert made["call_repr"] == "jobfuncs.add(1, 2)" and made["missed"] == "once"
    assert made["next_run"].endswith(("T01:00:00Z", "T02:00:00Z"))  # 03:00 in Berlin
    (row,) = listed(db_url)
    assert (row["name"], row["queue"], row["timezone"]) == ("nightly", "reports", "Europe/Berlin")
    status = jobq_cli("status", "--db", db_url)
    assert status.returncode == 0 and "schedules" in status.stdout and "nightly" in status.stdout
    assert "next run" in status.stdout and "0 3 * * *" in status.stdout

    assert jobq_cli("schedule", "pause", "nightly", "--db", db_url).returncode == 0
    assert listed(db_url)[0]["paused"] is True
    assert "paused" in jobq_cli("schedules", "--db", db_url).stdout
    resumed = jobq_cli("schedule", "resume", "nightly", "--db", db_url)
    assert resumed.returncode == 0 and "next run" in resumed.stdout
    assert listed(db_url)[0]["paused"] is False
    assert jobq_cli("schedule", "remove", "nightly", "--db", db_url).returncode == 0
    assert listed(db_url) == []
    missing = jobq_cli("schedule", "remove", "nightly", "--db", db_url)
    assert missing.returncode == 2 and "no schedule named 'nightly'" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("0 3 * *", "jobfuncs:add"), "bad cron expression '0 3 * *'"),
        (("0 3 * * *", "jobfuncs:add", "--timezone", "Europe/Nowhere"), "unknown time zone"),
        (("0 3 * * *", "jobfuncs:nothing"), "has no 'nothing'"),
        (("0 3 * * *", "jobfuncs:add", "--missed", "all", "--catch-up", "0"), "catch_up must"),
        (("0 3 * * *", "jobfuncs:add", "--missed", "sometimes"), "'sometimes' is not one of"),
    ],
)
def test_bad_input_exits_2_and_stores_nothing(db_url: str, args: tuple, message: str) -> None:
    done = jobq_cli("schedule", "add", "bad", *args, "--db", db_url)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert listed(db_url) == []


GOOD = """
[schedules.hourly]
cron = "0 * * * *"
job = "jobfuncs:add"
args = [1, 2]
missed = "all"
catch_up = 3

[schedules.berlin]
cron = "30 2 * * *"
job = "jobfuncs:add"
kwargs = { a = 5, b = 6 }
timezone = "Europe/Berlin"
queue = "reports"
"""


def test_sync_stores_a_whole_file_or_nothing(db_url: str, tmp_path: Path) -> None:
    assert jobq_cli("schedule", "add", "old", "* * * * *", "jobfuncs:add", "0", "0", "--db",
                    db_url).returncode == 0  # fmt: skip
    good = tmp_path / "schedules.toml"
    good.write_text(GOOD)
    done = jobq_cli("schedule", "sync", str(good), "--db", db_url)
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in listed(db_url)}
    assert set(rows) == {"berlin", "hourly", "old"}
    assert rows["berlin"]["call_repr"] == "jobfuncs.add(a=5, b=6)"
    assert (rows["hourly"]["missed"], rows["hourly"]["catch_up"]) == ("all", 3)

    for text, message in [
        (GOOD + '\n[schedules.broken]\ncron = "0 3 * *"\njob = "jobfuncs:add"\n',
         "schedule 'broken': bad cron expression"),
        (GOOD + '\n[schedules.broken]\ncron = "0 3 * * *"\njob = "jobfuncs:add"\ncolour = 1\n',
         "unknown key(s) ['colour']"),
        (GOOD.replace('"Europe/Berlin"', '"Europe/Berlim"'), "unknown time zone 'Europe/Berlim'"),
        ("[schedules.x\n", "is not valid TOML"),
    ]:  # fmt: skip
        bad = tmp_path / "bad.toml"
        bad.write_text(text.replace("args = [1, 2]", "args = [7, 7]"))
        done = jobq_cli("schedule", "sync", str(bad), "--db", db_url, "--prune")
        assert done.returncode == 2, done.stdout + done.stderr
        assert message in done.stderr, done.stderr
        assert {row["name"]: row for row in listed(db_url)} == rows  # nothing changed

    done = jobq_cli("schedule", "sync", str(good), "--prune", "--db", db_url)
    assert done.returncode == 0 and "schedule 'old' removed" in done.stdout
    assert {row["name"] for row in listed(db_url)} == {"berlin", "hourly"}


@pytest.mark.slow
def test_a_worker_runs_a_schedule_added_and_paused_from_the_command_line(
    db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "jobq", "worker", "--db", db_url, "--uuid", str(uuid.uuid4()),
             "--poll-interval", "0.2"],
            stdout=out, stderr=subprocess.STDOUT, env=subprocess_env(),
        )  # fmt: skip
    try:
        done = jobq_cli("schedule", "add", "tick", "* * * * * *", "jobfuncs:add", "2", "3",
                        "--db", db_url)  # fmt: skip
        assert done.returncode == 0, done.stderr
        wait_until(lambda: len(db.store.schedule_ticks("tick")) >= 3, timeout=WAIT, what="ticks")
        first_job = db.store.schedule_ticks("tick")[0][1]
        assert first_job is not None and db.get_job(first_job).wait(timeout=WAIT) == 5
        assert jobq_cli("schedule", "pause", "tick", "--db", db_url).returncode == 0
        count = len(db.store.schedule_ticks("tick"))
        time.sleep(2.5)  # a worker that still put jobs would have put two more by now
        assert len(db.store.schedule_ticks("tick")) == count
        row = listed(db_url)[0]
        assert row["last_job_id"] == db.store.schedule_ticks("tick")[-1][1]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert "Traceback" not in log.read_text(errors="replace")
