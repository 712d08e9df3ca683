"""Puts whose commit reply is lost (issue 17.5), through a real TCP proxy between the client
and PostgreSQL: the server commits, the client's connection drops before the reply. The put
must say its outcome is unknown (`PutOutcomeUnknown`, a `StoreUnavailable`), and retrying
it with its unique key must leave exactly one job. A request lost before the COMMIT went out
is a plain `StoreUnavailable`, and nothing is stored. (SQLite has no link to lose:
docs/guide.md, "Retrying a put safely".)"""

from __future__ import annotations

from collections.abc import Iterator

import jobfuncs
import pytest
from netproxy import PartitionProxy
from worker_helpers import execute, wait_until

import jobq

pytestmark = pytest.mark.fault  # the fault suite: pytest -m fault

POSTGRES_ONLY = pytest.mark.parametrize("engine", ["postgres"], indirect=True)


@pytest.fixture
def proxied(db_url: str) -> Iterator[tuple[jobq.Database, PartitionProxy]]:
    jobq.connect(db_url).close()  # the schema, made directly
    proxy = PartitionProxy.to_server_of(db_url)
    database = jobq.connect(proxy.url(db_url))
    try:
        yield database, proxy
    finally:
        database.close()
        proxy.close()


def jobs_with_key(db_url: str, key: str) -> int:
    return int(
        execute(db_url, "SELECT count(*) FROM jobq_jobs WHERE unique_key = %s", (key,))[0][0]
    )


def count_jobs(db_url: str) -> int:
    return int(execute(db_url, "SELECT count(*) FROM jobq_jobs")[0][0])


@POSTGRES_ONLY
def test_a_lost_commit_reply_is_an_unknown_outcome_and_a_keyed_retry_makes_one_job(
    db_url: str, proxied: tuple[jobq.Database, PartitionProxy]
) -> None:
    db, proxy = proxied
    queue = db.queue()
    queue.put(jobq.Job(jobfuncs.double, 0))  # the link works
    proxy.drop_after(b"COMMIT")
    with pytest.raises(jobq.PutOutcomeUnknown) as caught:
        queue.put(jobq.Job(jobfuncs.double, 1), unique_key="order:1")
    assert proxy.dropped.is_set()
    assert isinstance(caught.value, jobq.StoreUnavailable)  # existing handlers still catch it
    assert "outcome is unknown" in str(caught.value)
    assert "may or may not be stored" in str(caught.value)
    assert "same unique_key" in str(caught.value)
    # The server did commit (it may still be at it when the client hears of the loss).
    wait_until(lambda: jobs_with_key(db_url, "order:1") == 1, what="the in-doubt commit")
    retried = queue.put(jobq.Job(jobfuncs.double, 1), unique_key="order:1")
    assert retried.put_outcome == "existing"
    assert jobs_with_key(db_url, "order:1") == 1


@POSTGRES_ONLY
def test_a_put_many_whose_commit_reply_is_lost_is_safe_to_retry_with_keys(
    db_url: str, proxied: tuple[jobq.Database, PartitionProxy]
) -> None:
    db, proxy = proxied
    queue = db.queue()
    jobs = [jobq.Job(jobfuncs.double, i) for i in range(3)]
    proxy.drop_after(b"COMMIT")
    with pytest.raises(jobq.PutOutcomeUnknown):
        queue.put_many(jobs, unique_key=lambda job: f"row:{job.args[0]}")
    again = queue.put_many(
        [jobq.Job(jobfuncs.double, i) for i in range(3)],
        unique_key=lambda job: f"row:{job.args[0]}",
    )
    assert [j.put_outcome for j in again] == ["existing"] * 3
    assert count_jobs(db_url) == 3


@POSTGRES_ONLY
def test_a_plain_put_whose_reply_is_lost_says_a_retry_may_duplicate(
    db_url: str, proxied: tuple[jobq.Database, PartitionProxy]
) -> None:
    """A put without a key is one autocommit statement: the statement is its commit."""
    db, proxy = proxied
    proxy.drop_after(b"INSERT INTO jobq_jobs")
    with pytest.raises(jobq.PutOutcomeUnknown, match="Retrying may make duplicates"):
        db.queue().put(jobq.Job(jobfuncs.double, 1))
    wait_until(lambda: count_jobs(db_url) == 1, what="the in-doubt commit")


@POSTGRES_ONLY
def test_a_connection_lost_before_the_commit_is_sent_is_a_plain_store_unavailable(
    db_url: str, proxied: tuple[jobq.Database, PartitionProxy]
) -> None:
    """The link drops under the INSERT, so the client never sends COMMIT. (A COMMIT lost in
    the network after the client sent it is in doubt for the client, whatever the server
    saw: only the proxy knows it never arrived.)"""
    db, proxy = proxied
    proxy.drop_before(b"INSERT INTO jobq_jobs")
    with pytest.raises(jobq.StoreUnavailable) as caught:
        db.queue().put(jobq.Job(jobfuncs.double, 1), unique_key="order:2")
    assert proxy.dropped.is_set()
    assert not isinstance(caught.value, jobq.OutcomeUnknown)
    assert count_jobs(db_url) == 0  # nothing was written, as the error may say
    made = db.queue().put(jobq.Job(jobfuncs.double, 1), unique_key="order:2")
    assert made.put_outcome == "created"
    assert jobs_with_key(db_url, "order:2") == 1
