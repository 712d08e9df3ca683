"""A producer process of tests/acceptance/test_unique_process.py: waits for a start file,
then puts jobs with unique keys, `rounds` times (0: until a file `<start>.stop` exists), and
writes what its puts did as JSON."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jobfuncs

import jobq


def main(db_url: str, start: str, out: str, rounds: int, keys: int) -> None:
    db = jobq.connect(db_url)
    outcomes: dict[str, int] = {}
    created: list[int] = []
    while not Path(start).exists():
        time.sleep(0.005)
    queue = db.queue()
    stop = Path(start + ".stop")
    done = 0
    while done < rounds if rounds else not stop.exists():
        done += 1
        for k in range(keys):
            job = _put(
                lambda k=k: [queue.put(jobq.Job(jobfuncs.sleep_then, 0.002, k), unique_key=f"k{k}")]
            )[0]
            outcomes[job.put_outcome or "?"] = outcomes.get(job.put_outcome or "?", 0) + 1
            if job.put_outcome == "created":
                created.append(job.id)  # type: ignore[arg-type]
        batch = _put(
            lambda: queue.put_many(
                [jobq.Job(jobfuncs.sleep_then, 0.002, k) for k in range(keys)],
                unique_key=key_of,
            )
        )
        for job in batch:
            outcomes[job.put_outcome or "?"] = outcomes.get(job.put_outcome or "?", 0) + 1
            if job.put_outcome == "created":
                created.append(job.id)  # type: ignore[arg-type]
    db.close()
    Path(out).write_text(json.dumps({"outcomes": outcomes, "created": created}))


def key_of(job: jobq.Job) -> str:
    return f"k{job.args[1]}"


def _put(put):  # type: ignore[no-untyped-def]
    """A put, again after a transient write conflict (SQLite's lock under many writers)."""
    for _ in range(50):
        try:
            return put()
        except jobq.ConflictError:
            time.sleep(0.01)
    return put()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
