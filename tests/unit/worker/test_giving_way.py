"""A job claimed ahead that gives its start up to a job put back ahead of it: the jobs held
behind it in its agent's pool leave the queue at once, so that no thread of the pool starts
one of them first (issue 16.1's test once saw a worker's three threads take the long jobs
behind a short one that gave way, which then waited for them)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from worker_helpers import wait_until

from jobq.worker.agent import AgentPool


@dataclass(frozen=True)
class Item:
    id: int
    status: str = "assigned"  # claimed ahead, unstarted
    lane: int = 1  # behind put-back jobs


def held_behind(item: Item) -> bool:
    return item.status == "assigned" and item.lane != 0


def test_the_jobs_held_behind_a_job_that_gave_way_are_held_back_until_taken() -> None:
    started: list[int] = []
    go = threading.Event()

    def run(item: Item) -> None:
        if item.id == 0:
            go.wait(10)
        elif item.id == 1:
            pool.hold_back(held_behind)  # gave its start up to a put-back job
            return
        started.append(item.id)

    pool = AgentPool("main", "", run)
    pool.resize(1)
    for id_ in range(4):  # 0 runs; 1, 2 and 3 are queued behind it
        pool.submit(Item(id_))
    wait_until(lambda: pool.queued == 3)
    go.set()
    wait_until(lambda: pool.queued == 0 and pool.running == 0)
    assert started == [0]  # neither 2 nor 3 ran after 1 gave way
    pool.submit(Item(4))  # claimed ahead before the dispatcher took what was held back
    pool.submit(Item(5, lane=0), front=True)  # the put-back job itself
    pool.submit(Item(6, status="active"))  # claimed and started for a free thread
    wait_until(lambda: pool.running == 0)
    assert started == [0, 5, 6]
    assert [item.id for item in pool.take_held_back()] == [2, 3, 4]
    assert pool.take_held_back() == []
    pool.submit(Item(7))  # taken: the pool queues and runs as before
    wait_until(lambda: pool.running == 0)
    assert started == [0, 5, 6, 7]
    pool.stop()
