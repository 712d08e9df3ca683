"""Claiming jobs for a dispatcher's agent (with filters and quotas), starting a claimed
job, and checking that an attempt still holds its job.

Functions of `SqlStore`'s operations, each over the engine's `Driver`. `quota_queues` is
the store's memory of the queues found to have quotas, which take the quota path directly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from jobq.store._rows import job_record, json_names
from jobq.store.base import JobRecord
from jobq.store.driver import Driver, Executor, Row


def claim(
    driver: Driver,
    quota_queues: set[str],
    queue: str,
    dispatcher: str,
    agent: str,
    limit: int,
    now: dt.datetime,
    accept: Callable[[JobRecord], bool] | None,
    active_only: bool,
    start: bool | int,
) -> list[JobRecord]:
    """Claim up to `limit` due jobs of `queue` in queue order, those `accept` takes (all if
    None), within the queue's quotas. The first `start` of them in queue order (all for True,
    none for False) start too, for a claimer with a free thread for each; the others stay
    assigned (claimed ahead) until `start()`."""
    if limit <= 0:
        return []
    started = limit if start is True else max(0, min(int(start), limit))
    params = {
        "queue": queue,
        "dispatcher": dispatcher,
        "agent": agent,
        "now": driver.to_db_time(now),
        "start": started,
    }
    # Queues found to have quotas go straight to the quota path, which is correct with or
    # without quotas (it forgets the queue once it finds none).
    rows: list[Row] = []
    if queue not in quota_queues and accept is None:
        # The common claim is one statement (its dispatcher check included). It takes
        # nothing from a queue with quotas: only an empty answer asks whether that was
        # why, so claims on queues without quotas do no more work.
        def claim_due(ex: Executor) -> tuple[list[Row], bool]:
            rows = ex.all("claim", limit=limit, active_only=active_only, **params)
            return rows, not rows and _has_quotas(ex, queue)

        rows, found_quotas = driver.grouped(claim_due)
        if not found_quotas:
            return _records_in_order(driver, rows)
        quota_queues.add(queue)
    with driver.transaction() as ex:
        if active_only:
            # A dispatcher presumed dead (deactivated by a sweep) claims nothing until its
            # next ping reactivates it: what it would take would only be handed on again.
            me = ex.one("get_dispatcher", uuid=dispatcher)
            if me is None or me["activated"] is None:
                return []
        if queue not in quota_queues:
            # Filters are Python predicates: judge candidates, then claim the chosen ones
            # in the same transaction (PostgreSQL holds the candidates' locks).
            assert accept is not None  # the claim without a filter returned above
            window = max(100, limit * 10)
            candidates = ex.all("claim_candidates", limit=window, **params)
            chosen = [r["id"] for r in candidates if accept(job_record(driver, r))][:limit]
            if chosen:
                rows = ex.all(
                    "claim_ids",
                    ids=driver.to_db_list(chosen),
                    start_ids=driver.to_db_list(chosen[:started]),
                    **params,
                )
            # Like the claim, both queries take nothing from a queue with quotas.
            if not rows and _has_quotas(ex, queue):
                quota_queues.add(queue)
        if queue in quota_queues:
            rows, has_quotas = _claim_with_quotas(driver, ex, limit, now, params, accept)
            if not has_quotas:
                quota_queues.discard(queue)
    return _records_in_order(driver, rows)


def claim_callbacks(
    driver: Driver, queue: str, dispatcher: str, agent: str, limit: int, now: dt.datetime
) -> list[JobRecord]:
    """Claim and start up to `limit` callbacks due at the front of `queue`, for an agent's
    callback slot (see the query)."""
    if limit <= 0:
        return []
    params = {"queue": queue, "dispatcher": dispatcher, "agent": agent}
    at = driver.to_db_time(now)
    rows = driver.grouped(lambda ex: ex.all("claim_callbacks", limit=limit, now=at, **params))
    return _records_in_order(driver, rows)


def _records_in_order(driver: Driver, rows: list[Row]) -> list[JobRecord]:
    """RETURNING order is unspecified: restore queue order (lane, sort_at, id), which is
    not begin_after order for pre-dated or put-back jobs."""
    rows.sort(key=lambda r: (r["lane"], r["sort_at"], r["id"]))
    return [job_record(driver, r) for r in rows]


def _has_quotas(ex: Executor, queue: str) -> bool:
    row = ex.one("queue_has_quotas", queue=queue)
    return bool(row and row["has"])


def _claim_with_quotas(
    driver: Driver,
    ex: Executor,
    limit: int,
    now: dt.datetime,
    params: dict[str, Any],
    accept: Callable[[JobRecord], bool] | None,
) -> tuple[list[Row], bool]:
    """The claim of a queue with quotas, in the claim's transaction; returns the rows
    claimed and whether the queue has quotas (still).

    Lock the queue's quotas (PostgreSQL: an advisory lock per queue, so concurrent claimers
    take turns and each counts the slots the previous one took; SQLite: BEGIN IMMEDIATE
    already serializes), count the slots held (claimed and running jobs, and
    pending jobs put back "now", which keep theirs), then take due jobs in queue order,
    skipping those that name a full quota. A job holding its slots counts itself and may
    be taken even from a full quota; a job past its deadline is taken without consulting
    quotas (it is failed, not run). Names of quotas that no longer exist are ignored.
    """
    queue = params["queue"]
    ex.one("lock_queue_quotas", queue=queue)
    sizes = {r["name"]: int(r["size"]) for r in ex.all("queue_quotas", queue=queue)}
    held: dict[str, int] = dict.fromkeys(sizes, 0)
    for row in ex.all("quota_slots_held", queue=queue, now=params["now"]):
        if row["name"] in held:
            held[row["name"]] = int(row["held"])
    # A filter judges in Python: look at as many jobs as a filter claim does. Otherwise
    # jobs naming quotas full at the start are left out by the query, and a few more than
    # `limit` cover those that fill up during this claim (then another round).
    window = max(100, limit * 10) if accept is not None else limit + 10
    claimed: list[Row] = []
    for _ in range(5):
        full = sorted(name for name, size in sizes.items() if held[name] >= size)
        candidates = ex.all(
            "claim_quota_candidates", full=driver.to_db_list(full), limit=window, **params
        )
        chosen: list[int] = []
        filled = False  # a quota filled up while choosing: jobs behind it were skipped
        for row in candidates:
            if len(claimed) + len(chosen) >= limit:
                break
            names = set(_quota_names(row)) & sizes.keys()
            counted = bool(row["holds_quota"]) or _expired(driver, row, now)
            if not counted and any(held[name] >= sizes[name] for name in names):
                filled = True
                continue
            if accept is not None and not accept(job_record(driver, row)):
                continue
            chosen.append(row["id"])
            if not counted:
                for name in names:
                    held[name] += 1
        if chosen:
            to_start = chosen[: max(0, params["start"] - len(claimed))]
            claimed += ex.all(
                "claim_ids",
                ids=driver.to_db_list(chosen),
                start_ids=driver.to_db_list(to_start),
                **params,
            )
        # Another round only if the quotas that just filled up may hide claimable jobs.
        if len(claimed) >= limit or not filled or len(candidates) < window:
            break
    return claimed, bool(sizes)


def _quota_names(row: Row) -> tuple[str, ...]:
    """A candidate's quota names; none for a damaged column (its claimer fails the job)."""
    try:
        return json_names(row["quota_names"])
    except ValueError:
        return ()


def _expired(driver: Driver, row: Row, now: dt.datetime) -> bool:
    if row["begin_by"] is None:
        return False
    begin_after = driver.from_db_time(row["begin_after"])
    return begin_after + dt.timedelta(seconds=row["begin_by"]) < now


def start(driver: Driver, job_id: int, attempt: int, dispatcher: str, now: dt.datetime) -> bool:
    """Mark a claimed job active; False if the attempt no longer holds it, or if it was
    claimed ahead and a job put back at the front of its queue is due (the claimer then gives
    it back). One short write, committed with other threads' (group commit) where the engine
    can."""
    at = driver.to_db_time(now)
    return driver.start_job({"id": job_id, "attempt": attempt, "dispatcher": dispatcher, "now": at})


def owns(driver: Driver, job_id: int, attempt: int, dispatcher: str) -> bool:
    with driver.read() as ex:
        return ex.one("check_owner", id=job_id, attempt=attempt, dispatcher=dispatcher) is not None
