"""The store's records of the queues' rate limits (enforced by `_claim`): create, change,
remove, and how each stands now (the monitor).

A rate limit allows at most `limit` claims of jobs naming it in any interval of `per` seconds.
Each claim of such a job writes a row of `jobq_rate_limit_claims` (its time) in the claim's
own transaction, under the queue's claim lock (`lock_queue_quotas`); see `_claim`.
"""

from __future__ import annotations

import datetime as dt
import json

from jobq.store.base import RateLimitRecord
from jobq.store.driver import Driver


def queue_rate_limits(driver: Driver, queue: str) -> list[tuple[str, int, float]]:
    """(name, limit, per seconds) of each rate limit of `queue`, by name."""
    with driver.read() as ex:
        rows = ex.all("queue_rate_limits", queue=queue)
    return [(r["name"], int(r["max_claims"]), float(r["per"])) for r in rows]


def create_rate_limit(driver: Driver, queue: str, name: str, limit: int, per: float) -> bool:
    """Create rate limit `name` of `queue`; False if it exists already."""
    with driver.transaction() as ex:
        ex.one("lock_queue_quotas", queue=queue)  # not while a claim of the queue runs
        return ex.run("create_rate_limit", queue=queue, name=name, max_claims=limit, per=per) == 1


def change_rate_limit(driver: Driver, queue: str, name: str, limit: int, per: float) -> bool:
    """Set the limit and period of rate limit `name`; the next claim applies them. False if
    there is no such limit."""
    with driver.transaction() as ex:
        changed = (
            ex.run("change_rate_limit", queue=queue, name=name, max_claims=limit, per=per) == 1
        )
        if changed:
            driver.notify(ex, queue)  # a looser limit may let waiting jobs go
        return changed


def remove_rate_limit(driver: Driver, queue: str, name: str, force: bool) -> int | None:
    """Remove rate limit `name` of `queue` unless pending jobs name it (then only with
    `force`: they are no longer limited). None if there is no such limit; otherwise the
    number of pending jobs naming it (the limit was removed if that is 0, or with `force`)."""
    with driver.transaction() as ex:
        ex.one("lock_queue_quotas", queue=queue)  # counted and removed between two claims
        if not any(r["name"] == name for r in ex.all("queue_rate_limits", queue=queue)):
            return None
        row = ex.one("jobs_naming_rate_limit", queue=queue, quoted=json.dumps(name))
        waiting = int(row["n"]) if row else 0
        if waiting and not force:
            return waiting
        ex.run("remove_rate_limit", queue=queue, name=name)
        ex.run("forget_rate_limit_claims", queue=queue, name=name)
        driver.notify(ex, queue)  # jobs naming it are no longer held back
        return waiting


def rate_limits(driver: Driver, queue: str | None, now: dt.datetime) -> list[RateLimitRecord]:
    """Every rate limit (of `queue`, or of every queue) as it stands at `now`."""
    at = driver.to_db_time(now)
    found: list[RateLimitRecord] = []
    with driver.read() as ex:
        queues = (
            [queue]
            if queue is not None
            else [r["queue"] for r in ex.all("monitor_rate_limit_queues")]
        )
        for q in queues:
            for row in ex.all("rate_limit_use", queue=q, now=at):
                waiting = ex.one("jobs_naming_rate_limit", queue=q, quoted=json.dumps(row["name"]))
                limit, per, used = int(row["max_claims"]), float(row["per"]), int(row["used"])
                frees_at = None
                if used >= limit and row["oldest"] is not None:
                    oldest = driver.from_db_time(row["oldest"])
                    frees_at = oldest + dt.timedelta(seconds=per)
                found.append(
                    RateLimitRecord(
                        queue=q,
                        name=row["name"],
                        limit=limit,
                        per=per,
                        used=used,
                        waiting=int(waiting["n"]) if waiting else 0,
                        frees_at=frees_at,
                    )
                )
    return found
