"""The "Priorities" example of docs/guide.md, run as part of jobq's own suite: a worker of one
thread sends the password reset first and the clean-up last; the reminder, scheduled for
later, waits."""

from __future__ import annotations

import time
from pathlib import Path

import priority_example

import jobq
from jobq.testing import wait_for_result
from jobq.worker.agent import AgentSpec


def test_a_worker_sends_by_priority(tmp_path: Path) -> None:
    priority_example.SENT.clear()
    with jobq.connect(f"sqlite:///{tmp_path / 'mail.db'}") as db:
        (reset,) = priority_example.fill(db)
        assert [job.priority for job in db.queue("mail")] == [10, 10, 0, 0, 0, -5]
        agents = [AgentSpec("main", 1)]
        with db.worker(queues=["mail"], agents=agents, poll_interval=0.1).start():
            assert wait_for_result(reset) == "ann"
            deadline = time.monotonic() + 30
            while priority_example.SENT[-1:] != ["cleanup:nobody"]:
                assert time.monotonic() < deadline, priority_example.SENT
                time.sleep(0.05)
        assert priority_example.SENT == [
            "password-reset:ann",
            "newsletter:user0",
            "newsletter:user1",
            "newsletter:user2",
            "cleanup:nobody",
        ]
        assert [job.call_repr for job in db.queue("mail")] == [
            "priority_example.send('reminder', 'bob')"
        ]


def test_the_guide_shows_this_example_as_it_runs() -> None:
    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "guide.md").read_text()
    section = guide.split("## Priorities\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert block in Path(priority_example.__file__).read_text()
