"""Rows written before the layers change keep working: their payloads name the composite's
callables at `jobq.model.compose`, where they no longer live (now `jobq.jobs.compose`).

`data/composite_payloads_schema4.json` holds payloads as jobq wrote them at schema 4 (commit
c24ff32, unsigned): a `parallel` and a `serial` composite, a part's `part_done` callback and
a postprocess.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import compose_jobs as cj

import jobq
from jobq.jobs import compose
from jobq.model.codec import Codec
from jobq.store.base import NewJob
from jobq.testing import start_worker

ROWS: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "composite_payloads_schema4.json").read_text()
)["rows"]


def _payload(name: str) -> bytes:
    return bytes.fromhex(ROWS[name]["call"])


def test_old_payloads_name_the_moved_callables() -> None:
    codec = Codec(None)
    expected = {
        "parallel": compose.run_parallel,
        "serial": compose.run_serial,
        "part_done": compose.part_done,
        "run_postprocess": compose.run_postprocess,
    }
    for name, func in expected.items():
        assert b"jobq.model.compose" in _payload(name)
        decoded = codec.loads(_payload(name))[0]
        assert decoded is func, name
    _, parts, kwargs = codec.loads(_payload("parallel"))
    assert [(p.callable, p.args) for p in parts] == [(cj.value, (2,)), (cj.value, (3,))]
    assert kwargs["postprocess"].callable is cj.sum_results


def test_old_composites_run_to_their_result(db: jobq.Database) -> None:
    """A worker of today runs composites put by the earlier code, on either engine."""
    queue = db.queue()
    now = db.clock.now()
    rows = [
        NewJob(
            queue="",
            call=_payload(name),
            call_repr=ROWS[name]["call_repr"],
            begin_after=now,
            job_class=ROWS[name]["job_class"],
        )
        for name in ("parallel", "serial")
    ]
    parallel_id, serial_id = db.store.enqueue(rows, now)
    assert len(queue) == 2
    with start_worker(db):
        assert db.get_job(parallel_id).wait(timeout=30) == 5  # 2 + 3
        assert db.get_job(serial_id).wait(timeout=30) == 9  # 4 + 5
    assert isinstance(db.get_job(parallel_id), jobq.Composite)
    assert db.get_job(serial_id).kind == "serial"  # type: ignore[attr-defined]
