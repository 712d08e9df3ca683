"""The "Unique jobs" example of docs/guide.md, run as part of jobq's own suite: two clicks
make one PDF job, a click after it completed makes a new one, and a digest asked for twice
within the hour is sent once."""

from __future__ import annotations

from pathlib import Path

import unique_example

import jobq
from jobq.testing import wait_for_result


def test_two_clicks_make_one_pdf_and_a_digest_goes_once_an_hour(tmp_path: Path) -> None:
    unique_example.RENDERED.clear()
    unique_example.DIGESTS.clear()
    with jobq.connect(f"sqlite:///{tmp_path / 'app.db'}") as db:
        first = unique_example.request_pdf(db, 42)
        second = unique_example.request_pdf(db, 42)
        assert (first.put_outcome, second.put_outcome) == ("created", "existing")
        assert second.id == first.id and len(db.queue("pdf")) == 1
        digest = unique_example.request_digest(db, "ann")
        with db.worker(queues=["pdf", "mail"], poll_interval=0.1).start():
            assert wait_for_result(first) == "order-42.pdf"
            wait_for_result(digest)
            later = unique_example.request_pdf(db, 42)  # the first one is done: a new job
            assert later.put_outcome == "created" and later.id != first.id
            assert wait_for_result(later) == "order-42.pdf"
            again = unique_example.request_digest(db, "ann")  # sent, but within the hour
            assert again.put_outcome == "existing" and again.id == digest.id
        assert unique_example.RENDERED == [42, 42]
        assert unique_example.DIGESTS == ["ann"]


def test_the_guide_shows_this_example_as_it_runs() -> None:
    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "guide.md").read_text()
    section = guide.split("## Unique jobs\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert block in Path(unique_example.__file__).read_text()
