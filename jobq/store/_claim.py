"""Claiming jobs for a dispatcher's agent (with filters, quotas and rate limits), starting a
claimed job, and checking that an attempt still holds its job.

Functions of `SqlStore`'s operations, each over the engine's `Driver`. `ClaimMemory` is
what the store remembers of its queues between claims: those found to have quotas or rate
limits (they take the quota path directly), when a full rate limit frees a claim, and those
whose due jobs wait for a free thread.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobq.store._rows import job_record, json_names
from jobq.store.base import JobRecord
from jobq.store.driver import Driver, Executor, Row


@dataclass
class ClaimMemory:
    """A store's memory of its queues between claims (one store per process)."""

    # Queues found to have quotas or rate limits: their claims take the quota path.
    quota_queues: set[str] = field(default_factory=set)
    # Per queue, when a rate limit that had no claim left frees one (Store.rate_limit_wake).
    rate_wakes: dict[str, dt.datetime] = field(default_factory=dict)
    # Queues whose last claim left jobs naming a rate limit (with claims left) for want of a
    # free thread to start them: a claim that can start nothing takes nothing from them, so
    # it is not made (it would cost a locked transaction for nothing).
    start_bound: set[str] = field(default_factory=set)


def claim(
    driver: Driver,
    memory: ClaimMemory,
    queue: str,
    dispatcher: str,
    agent: str,
    limit: int,
    now: dt.datetime,
    accept: Callable[[JobRecord], bool] | None,
    active_only: bool,
    start: bool | int,
    database_time: bool,
) -> list[JobRecord]:
    """Claim up to `limit` due jobs of `queue` in queue order, those `accept` takes (all if
    None), within the queue's quotas. The first `start` of them in queue order (all for True,
    none for False) start too, for a claimer with a free thread for each; the others stay
    assigned (claimed ahead) until `start()`. Rate limit windows are measured at `now`, or
    with `database_time` in the database's time (see `_claim_with_quotas`)."""
    if limit <= 0:
        return []
    started = limit if start is True else max(0, min(int(start), limit))
    quota_queues = memory.quota_queues
    if started == 0 and queue in memory.start_bound and queue in quota_queues:
        return []
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
        if active_only and queue not in quota_queues:
            # A dispatcher presumed dead (deactivated by a sweep) claims nothing until its
            # next ping reactivates it: what it would take would only be handed on again.
            # (The quota path asks with its lock.)
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
                    stamp=params["now"],
                    **params,
                )
            # Like the claim, both queries take nothing from a queue with quotas.
            if not rows and _has_quotas(ex, queue):
                quota_queues.add(queue)
        if queue in quota_queues:
            quota_claim = _claim_with_quotas(
                driver,
                ex,
                limit,
                now,
                params,
                accept,
                was_start_bound=queue in memory.start_bound,
                active_only=active_only,
                database_time=database_time,
            )
            rows = quota_claim.rows
            if quota_claim.wake is None:
                memory.rate_wakes.pop(queue, None)
            else:
                memory.rate_wakes[queue] = quota_claim.wake
            if quota_claim.start_bound:
                memory.start_bound.add(queue)
            else:
                memory.start_bound.discard(queue)
            if not quota_claim.has_limits:
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
    """RETURNING order is unspecified: restore queue order (lane, priority DESC, sort_at,
    id), which is not begin_after order for pre-dated, put-back or prioritized jobs."""
    rows.sort(key=lambda r: (r["lane"], -r["priority"], r["sort_at"], r["id"]))
    return [job_record(driver, r) for r in rows]


def _has_quotas(ex: Executor, queue: str) -> bool:
    """Whether `queue` has quotas or rate limits (its claims then take the quota path)."""
    row = ex.one("queue_has_limits", queue=queue)
    return bool(row and row["has"])


@dataclass
class _QuotaClaim:
    rows: list[Row]  # the jobs claimed
    has_limits: bool  # whether the queue has quotas or rate limits (still)
    wake: dt.datetime | None  # when a rate limit with no claim left frees one
    start_bound: bool  # jobs naming a rate limit were left for want of a free thread


def _claim_with_quotas(
    driver: Driver,
    ex: Executor,
    limit: int,
    now: dt.datetime,
    params: dict[str, Any],
    accept: Callable[[JobRecord], bool] | None,
    *,
    was_start_bound: bool,
    active_only: bool,
    database_time: bool,
) -> _QuotaClaim:
    """The claim of a queue with quotas or rate limits, in the claim's transaction.

    Lock the queue's quotas (PostgreSQL: an advisory lock per queue, so concurrent claimers
    take turns and each counts the slots and claims the previous one took; SQLite: BEGIN
    IMMEDIATE already serializes), count the slots held (claimed and running jobs, and
    pending jobs put back "now", which keep theirs) and the claims each rate limit has left
    in its window, then take due jobs in queue order, skipping those that name a full quota
    or a rate limit with no claim left. A job holding its slots counts itself and may be
    taken even from a full quota; a job past its deadline is taken without consulting quotas
    or rate limits (it is failed, not run). Names of quotas and rate limits that no longer
    exist are ignored.

    A job naming a rate limit is taken only to start at once (one of the first `start` jobs
    of the claim), never claimed ahead: its claim time is its start time, and every claim of
    it is recorded (`jobq_rate_limit_claims`, forgotten a minute after leaving the window),
    so no interval of `per` seconds holds more than `limit` starts of jobs naming it. Jobs
    left for want of a free thread are not looked past: the candidates read are bounded by
    the claim's size whatever waits behind them (`was_start_bound`, the previous claim's
    finding, narrows them to the jobs it can start and a few more).

    With `database_time`, windows are measured in the database's time read once the lock is
    granted (PostgreSQL's clock, this machine's on SQLite), not at `now`: claims from machines
    whose clocks differ count on one clock, in the order they took the lock, and a claim on a
    queue with rate limits stores that time as its jobs' claim and start times. Otherwise (a
    claimer with a clock of its own, as tests have) at `now`.
    """
    queue = params["queue"]
    locked = ex.one("lock_queue_for_claim", queue=queue, dispatcher=params["dispatcher"])
    assert locked is not None
    if active_only and not locked["active"]:
        return _QuotaClaim([], True, None, was_start_bound)  # see claim(): nothing for now
    # Rate limit windows are measured at the claimer's `now`, or with `database_time` in the
    # database's time once the lock is granted. Which jobs are due, and deadlines, are judged at
    # `now`, as in every claim (their times were written on the putters' clocks).
    if not database_time:
        window_now = now
    elif locked["now"] is not None:
        window_now = driver.from_db_time(locked["now"])
    else:
        window_now = dt.datetime.now(dt.UTC)
    window_at = driver.to_db_time(window_now)
    sizes = {r["name"]: int(r["size"]) for r in ex.all("queue_quotas", queue=queue)}
    held: dict[str, int] = dict.fromkeys(sizes, 0)
    if sizes:
        for row in ex.all("quota_slots_held", queue=queue, now=params["now"]):
            if row["name"] in held:
                held[row["name"]] = int(row["held"])
    # Rate limits: the claims each has left in its window now (its maximum and that count).
    rates: dict[str, tuple[int, int]] = {}
    frees: dict[str, dt.datetime] = {}  # when each limit's oldest claim leaves its window
    pers: dict[str, float] = {}
    for r in ex.all("rate_limit_use", queue=queue, now=window_at):
        rates[r["name"]] = (int(r["max_claims"]), int(r["max_claims"]) - int(r["used"]))
        pers[r["name"]] = float(r["per"])
        oldest = window_now if r["oldest"] is None else driver.from_db_time(r["oldest"])
        frees[r["name"]] = min(oldest, window_now) + dt.timedelta(seconds=float(r["per"]))
    left = {name: free for name, (_, free) in rates.items()}
    startable = params["start"]
    # A queue with rate limits stamps its claims (assigned_at, active_start) with the time its
    # windows count them at, so that stored starts show the limit kept; others with `now`.
    stamp = window_at if rates else params["now"]
    # A filter judges in Python: look at as many jobs as a filter claim does. Otherwise
    # jobs naming quotas full at the start are left out by the query, and a few more than
    # `limit` cover those that fill up during this claim (then another round). A queue whose
    # jobs last waited for free threads is read only as far as this claim can start jobs.
    if accept is not None:
        window = max(100, limit * 10)
    elif was_start_bound and rates:
        window = min(limit, startable) + 10
    else:
        window = limit + 10
    claimed: list[Row] = []
    counted_claims: list[dict[str, Any]] = []  # {name, job_id}: a rate limit, a job it counts
    start_bound = False
    for _ in range(5):
        full = sorted(name for name, size in sizes.items() if held[name] >= size)
        exhausted = sorted(name for name, n in left.items() if n <= 0)
        candidates = ex.all(
            "claim_quota_candidates",
            full=driver.to_db_list(full),
            exhausted=driver.to_db_list(exhausted),
            limit=window,
            **params,
        )
        chosen: list[int] = []
        rated: dict[int, set[str]] = {}
        filled = False  # a quota or rate limit filled up while choosing: jobs were skipped
        for row in candidates:
            if len(claimed) + len(chosen) >= limit:
                break
            names = set(_names(row, "quota_names")) & sizes.keys()
            limits = set(_names(row, "rate_limits")) & rates.keys()
            expired = _expired(driver, row, now)
            counted = bool(row["holds_quota"]) or expired
            if not counted and any(held[name] >= sizes[name] for name in names):
                filled = True
                continue
            if limits and not expired:
                if any(left[name] <= 0 for name in limits):
                    filled = True
                    continue
                if len(claimed) + len(chosen) >= startable:
                    start_bound = True  # taken when a thread is free, not looked past
                    continue
            if accept is not None and not accept(job_record(driver, row)):
                continue
            chosen.append(row["id"])
            if not counted:
                for name in names:
                    held[name] += 1
            if limits and not expired:
                rated[row["id"]] = limits
                for name in limits:
                    left[name] -= 1
        if chosen:
            to_start = chosen[: max(0, startable - len(claimed))]
            rows = ex.all(
                "claim_ids",
                ids=driver.to_db_list(chosen),
                start_ids=driver.to_db_list(to_start),
                stamp=stamp,
                **params,
            )
            claimed += rows
            for row in rows:
                for name in sorted(rated.get(row["id"], ())):
                    counted_claims.append({"name": name, "job_id": row["id"]})
        # Another round only if the limits that just filled up may hide claimable jobs.
        if len(claimed) >= limit or not filled or len(candidates) < window:
            break
    if counted_claims:
        ex.run(
            "record_rate_limit_claims",
            queue=queue,
            now=window_at,
            claims=json.dumps(counted_claims),
        )
        for name in sorted({c["name"] for c in counted_claims}):
            ex.run("prune_rate_limit_claims", queue=queue, name=name, now=window_at, per=pers[name])
    # When the first full limit frees a claim, on the claimer's clock.
    free_at = min((frees[name] for name, n in left.items() if n <= 0), default=None)
    wake = None if free_at is None else now + (free_at - window_now)
    return _QuotaClaim(claimed, bool(sizes or rates), wake, start_bound)


def _names(row: Row, column: str) -> tuple[str, ...]:
    """A candidate's quota or rate limit names; none for a damaged column (its claimer fails
    the job)."""
    try:
        return json_names(row[column])
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
