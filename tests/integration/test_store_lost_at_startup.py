"""A store lost just as a dispatcher activates (the disk fills on SQLite, the link hangs on
PostgreSQL): the dispatcher waits and says so, as it does once running, and runs its jobs when
the store is back. It used to end its thread, leaving a worker that claimed nothing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from full_disk import fill
from jobfuncs import add
from netproxy import PartitionProxy

import jobq
from jobq.worker.dispatcher import DispatcherEvent

pytestmark = pytest.mark.fault  # the fault suite: pytest -m fault

WAIT = 30.0


@pytest.fixture
def lost_at_activation(
    engine: str, db_url: str, request: pytest.FixtureRequest
) -> Iterator[tuple[str, Callable[[], Callable[[], None]]]]:
    """A database URL, and `lose()`, which makes the store fail and returns `restore()`."""
    if engine == "sqlite":
        disk: Path = request.getfixturevalue("small_disk")

        def lose_disk() -> Callable[[], None]:
            return fill(disk).unlink

        yield f"sqlite:///{disk / 'jobs.db'}", lose_disk
        return
    proxy = PartitionProxy.to_server_of(db_url)

    def lose_link() -> Callable[[], None]:
        proxy.hang_new()
        proxy.sever()
        return proxy.stop_hanging

    try:
        yield proxy.url(db_url) + "&pool_timeout=1", lose_link
    finally:
        proxy.close()


def test_a_store_lost_as_the_dispatcher_activates_is_waited_for(
    lost_at_activation: tuple[str, Callable[[], Callable[[], None]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, lose = lost_at_activation
    with jobq.connect(url) as db:
        jobs = [db.queue().put(jobq.Job(add, i, 1)) for i in range(3)]
        worker = db.worker(poll_interval=0.1, ping_interval=0.5, death_interval=60)
        restored = threading.Event()

        def on_event(event: DispatcherEvent) -> None:
            if event.kind == "activated":  # in the dispatcher's thread, before its agents
                restore = lose()
                threading.Timer(1.5, lambda: (restore(), restored.set())).start()

        worker.add_listener(on_event)
        with caplog.at_level(logging.WARNING, logger="jobq.events"), worker:
            assert restored.wait(WAIT)
            assert [job.wait(timeout=WAIT) for job in jobs] == [1, 2, 3]
    assert "installing agents failed" in caplog.text, caplog.text
    assert "CRITICAL" not in [record.levelname for record in caplog.records]
