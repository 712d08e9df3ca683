"""A job row whose JSON columns hold text that is not JSON (damaged, or written by hand) is
read as empty and named in the record's `damaged` by every read: one bad row stops no claim,
sweep or listing (issue 17.1). The worker that claims it fails it (tests/acceptance)."""

from __future__ import annotations

from jobfuncs import add
from worker_helpers import execute

import jobq

UUID = "00000000-0000-0000-0000-0000000000d1"


def test_damaged_json_columns_are_read_as_empty_and_named(db: jobq.Database, db_url: str) -> None:
    queue = db.queue()
    damaged = queue.put(jobq.Job(add, 1, 1))
    sound = queue.put(jobq.Job(add, 2, 2))
    execute(
        db_url,
        "UPDATE jobq_jobs SET retry_data = ?, quota_names = ?, annotations = ? WHERE id = ?",
        ('{"a": ', '["x"', "[]", damaged.id),
    )
    record = db.store.get(damaged.id or 0)
    assert record is not None
    assert record.damaged == ("retry_data", "quota_names", "annotations")
    assert (record.retry_data, record.quota_names, record.annotations) == ({}, (), {})
    assert [j.id for j in queue] == [damaged.id, sound.id]  # listing goes on
    claimed = db.store.claim("", UUID, "main", 2, db.clock.now())
    assert [(r.id, r.damaged) for r in claimed] == [
        (damaged.id, ("retry_data", "quota_names", "annotations")),
        (sound.id, ()),
    ]
