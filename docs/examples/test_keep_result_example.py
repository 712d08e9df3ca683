"""The "Result expiry" example of docs/guide.md, run as part of jobq's own suite: a preview
read within its hour, then pruned by the worker's retention and read as expired."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import keep_result_example

import jobq
from jobq.testing import MovableClock


def test_a_preview_is_read_then_expires_after_its_hour(tmp_path: Path) -> None:
    clock = MovableClock(dt.datetime(2030, 6, 1, 9, 0, tzinfo=dt.UTC))
    with jobq.connect(f"sqlite:///{tmp_path / 'shop.db'}", clock=clock) as db:
        with db.worker(poll_interval=0.05) as worker:
            job = keep_result_example.request_preview(db, 42)
            assert job.id is not None
            assert keep_result_example.read_preview(db, job.id) == "preview of order 42"
            clock.advance(dt.timedelta(hours=1, minutes=2))  # past the hour, and a pruning run
            worker.wake()
            deadline = time.monotonic() + 20
            while True:
                try:
                    db.get_job(job.id)
                except jobq.JobExpired:
                    break
                assert time.monotonic() < deadline, "not pruned within 20 s"
                time.sleep(0.05)
        assert keep_result_example.read_preview(db, job.id) == (
            "expired at 10:00: request a new preview"
        )


def test_the_guide_shows_this_example_as_it_runs() -> None:
    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "guide.md").read_text()
    section = guide.split("### Result expiry: `put(..., keep_result=...)`\n", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert block in Path(keep_result_example.__file__).read_text()
