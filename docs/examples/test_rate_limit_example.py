"""The "Rate limits" example of docs/guide.md, run as part of jobq's own suite: a worker
sends the newsletter at most 5 messages per 2 seconds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import rate_limit_example

import jobq
from jobq.testing import wait_for_result


def test_a_worker_sends_within_the_limit(tmp_path: Path) -> None:
    addresses = [f"user{i}@example.com" for i in range(12)]
    with jobq.connect(f"sqlite:///{tmp_path / 'mail.db'}") as db:
        jobs = rate_limit_example.send_newsletter(db, addresses)
        assert db.queue("mail").rate_limits["smtp"].waiting == 12
        with db.worker(queues=["mail"], poll_interval=0.1).start():
            assert [wait_for_result(j, timeout=60) for j in jobs] == [
                f"sent to {a}" for a in addresses
            ]
        starts = sorted(j.refresh().active_start or dt.datetime.min for j in jobs)
        for first, sixth in zip(starts, starts[5:], strict=False):
            assert sixth - first >= dt.timedelta(seconds=2)
    assert sorted(rate_limit_example.SENT) == sorted([*addresses, "ops@example.com"])


def test_the_guide_shows_this_example_as_it_runs() -> None:
    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "guide.md").read_text()
    section = guide.split("## Rate limits\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert block in Path(rate_limit_example.__file__).read_text()
