"""The "Time limits" example of docs/guide.md, run as part of jobq's own suite: a job within
its limit returns its result; one past it ends when asked and fails with jobq.JobTimeout."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import timeout_example

import jobq


def test_a_job_within_its_limit_returns_its_result(tmp_path: Path) -> None:
    with jobq.connect(f"sqlite:///{tmp_path / 'export.db'}") as db:
        job = timeout_example.put_and_run(db, 5, dt.timedelta(minutes=5))
        assert (job.failed, job.result) == (False, 5)


def test_a_job_past_its_limit_stops_and_fails_with_a_timeout(tmp_path: Path) -> None:
    with jobq.connect(f"sqlite:///{tmp_path / 'export.db'}") as db:
        job = timeout_example.put_and_run(db, 100_000, dt.timedelta(seconds=0.5))
        assert job.failed
        assert job.result.type_name == "jobq.errors.JobTimeout"
        assert "it ended once its stop was requested" in job.result.message
        assert job.attempt == 1  # the default policy does not retry a timeout


def test_the_guide_shows_this_example_as_it_runs() -> None:
    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "guide.md").read_text()
    section = guide.split("## Time limits\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert block in Path(timeout_example.__file__).read_text()
