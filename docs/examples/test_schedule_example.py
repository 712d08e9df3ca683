"""The "Schedules" example of docs/guide.md, run as part of jobq's own suite: schedules
declared (twice, as an application does at each start) and run by a worker."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import schedule_example

import jobq
from jobq.testing import wait_for_result


def test_declared_schedules_run_in_a_worker(tmp_path: Path) -> None:
    with jobq.connect(f"sqlite:///{tmp_path / 'reports.db'}") as db:
        schedule_example.declare_schedules(db)
        schedule_example.declare_schedules(db)  # unchanged: kept as they were
        nightly = db.get_schedule("nightly-report")
        assert nightly.next_run is not None
        assert nightly.next_run.astimezone(ZoneInfo("Europe/Berlin")).hour == 3
        with db.worker(queues=["", "reports"], poll_interval=0.1).start():
            deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)
            while db.get_schedule("heartbeat").last_job_id is None:
                assert dt.datetime.now(dt.UTC) < deadline, "no heartbeat job within 20 s"
                time.sleep(0.1)
            job = db.get_job(db.get_schedule("heartbeat").last_job_id or 0)
            assert wait_for_result(job) == "report for ping"
        assert "ping" in schedule_example.DONE


def test_the_guide_shows_this_example_as_it_runs() -> None:
    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "guide.md").read_text()
    section = guide.split("## Schedules\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert block in Path(schedule_example.__file__).read_text()
