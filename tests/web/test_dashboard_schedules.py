"""The dashboard's schedules section on both engines, through Starlette's TestClient: each
schedule with its next and last run, and pause / resume for a logged-in operator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import jobfuncs
import pytest
from starlette.testclient import TestClient

import jobq
from jobq.web import create_app
from jobq.worker.schedules import Schedules

from .test_dashboard import TOKEN, log_in


@pytest.fixture
def client(db: jobq.Database) -> Iterator[TestClient]:
    with TestClient(create_app(db, token=TOKEN)) as test_client:
        yield test_client


def test_the_home_page_shows_schedules_and_pauses_them(
    db: jobq.Database, client: TestClient
) -> None:
    csrf = log_in(client)
    assert "<h2>Schedules</h2>" not in client.get("/").text  # none: no section
    made = db.schedule(
        "nightly-report", "0 3 * * *", jobq.Job(jobfuncs.add, 1, 2), timezone="Europe/Berlin"
    )
    db.schedule("every-minute", "* * * * *", jobq.Job(jobfuncs.add, 3, 4), missed="all")
    # A worker's loop puts the every-minute schedule's first tick.
    Schedules(db.store).tick(db.clock.now() + dt.timedelta(minutes=1, seconds=1))
    last = db.get_schedule("every-minute")
    assert last.last_job_id is not None and last.last_run is not None

    page = client.get("/").text
    assert "<h2>Schedules</h2>" in page and "nightly-report" in page and "Europe/Berlin" in page
    assert made.next_run is not None and made.next_run.strftime("%Y-%m-%d %H:%M:%S") in page
    assert last.last_run.strftime("%Y-%m-%d %H:%M:%S") in page
    assert f'href="/jobs/{last.last_job_id}"' in page and "all (up to 10)" in page
    assert "jobfuncs.add(1, 2)" in page and 'value="schedule-pause"' in page
    refused = client.post("/actions/schedule-pause", data={"schedule": "nightly-report"})
    assert refused.status_code == 403 and not db.get_schedule("nightly-report").paused  # no CSRF
    done = client.post("/actions/schedule-pause", data={"schedule": "nightly-report", "csrf": csrf})
    assert done.status_code == 200 and db.get_schedule("nightly-report").paused
    assert 'value="schedule-resume"' in client.get("/").text
    client.post("/actions/schedule-resume", data={"schedule": "nightly-report", "csrf": csrf})
    assert not db.get_schedule("nightly-report").paused
    missing = client.post("/actions/schedule-pause", data={"schedule": "nope", "csrf": csrf})
    assert missing.status_code == 409 and "no schedule named 'nope'" in missing.json()["error"]
