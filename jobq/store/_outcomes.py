"""How an attempt ends, and what follows (`store.base.Store`): results stored, fenced on the
attempt, and handed on to callbacks, parents and jobs waiting on them; reschedules; waits on
returned jobs; unstarted jobs failed; callbacks added.

`SqlStore` inherits this mixin; it relies on the engine's `_transaction`, `ts`, `ids`,
`_record` and `_notify`, and on the queries of `sql/<engine>/queries.sql`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jobq.errors import JobNotFound, ReassignedError
from jobq.store.base import NewJob, Outcome

if TYPE_CHECKING:
    from jobq.store._sql import Executor

DONE = ("callbacks", "completed")  # statuses of a job whose result is stored


class OutcomesMixin:
    """Results, reschedules, waits, unstarted failures and callbacks."""

    def store_result(
        self,
        job_id: int,
        attempt: int,
        dispatcher: str,
        outcome: Outcome,
        now: dt.datetime,
        *,
        conn: Any = None,
    ) -> None:
        params = self._result_params(job_id, attempt, dispatcher, outcome, now)
        if conn is None:
            self._store_alone(params, now)
            return
        with self._transaction(conn) as ex:  # with the job's own writes, in its transaction
            self._store_result(ex, params, now)

    def store_result_later(
        self,
        job_id: int,
        attempt: int,
        dispatcher: str,
        outcome: Outcome,
        now: dt.datetime,
        then: Callable[[BaseException | None], None],
    ) -> None:
        self._store_alone_later(
            self._result_params(job_id, attempt, dispatcher, outcome, now), now, then
        )

    # -- supplied by each engine (its group commit) ---------------------------------------------
    def _store_alone(self, params: dict[str, Any], now: dt.datetime) -> None:
        """A result without the job's own writes, committed (with other threads'
        completions) before returning."""
        raise NotImplementedError

    def _store_alone_later(
        self,
        params: dict[str, Any],
        now: dt.datetime,
        then: Callable[[BaseException | None], None],
    ) -> None:
        """`_store_alone` without waiting: `then(None)` once it is committed, or
        `then(error)`."""
        raise NotImplementedError

    def _result_params(
        self, job_id: int, attempt: int, dispatcher: str, outcome: Outcome, now: dt.datetime
    ) -> dict[str, Any]:
        return dict(
            id=job_id,
            attempt=attempt,
            dispatcher=dispatcher,
            result=outcome.result,
            result_repr=outcome.result_repr,
            failed=outcome.failed,
            failure=None if outcome.failure is None else json.dumps(outcome.failure),
            # Most jobs end on their first attempt, with no retry data (json.dumps: 1 µs).
            retry_data=json.dumps(outcome.retry_data) if outcome.retry_data else "{}",
            now=self.ts(now),
        )

    def _store_result(self, ex: Executor, params: dict[str, Any], now: dt.datetime) -> None:
        row = ex.one("store_result", **params)
        if row is None:
            raise ReassignedError(
                f"job {params['id']} attempt {params['attempt']} is no longer held by "
                f"dispatcher {params['dispatcher']}; its result was not stored"
            )
        self._after_stored(ex, params["id"], row, now)

    def _after_stored(
        self, ex: Executor, job_id: int, row: dict[str, Any], now: dt.datetime
    ) -> None:
        """After `store_result` (which completed the job unless it has callbacks), do only
        what its RETURNING row says is needed; the general path is `_settle`."""
        released = 0
        if row["status"] == "callbacks":
            released = ex.run("release_callbacks", id=job_id, now=self.ts(now))
        if released or row["quota_names"] != "[]":  # new work, or quota slots set free
            self._notify(ex, row["queue"])
        if row["status"] == "completed" and row["parent_id"] is not None:
            self._tell_parent(ex, row["parent_id"], now)
        if row["has_waiters"]:
            self._hand_to_waiters(ex, job_id, now)

    def _settle(self, ex: Executor, job_id: int, now: dt.datetime) -> None:
        """`job_id` just got its result: release its callbacks, complete it if none are open,
        and hand the result to the jobs that returned it (in this same transaction)."""
        row = ex.one("lock_job", id=job_id)
        assert row is not None
        released = ex.run("release_callbacks", id=job_id, now=self.ts(now))
        if released or row["quota_names"] != "[]":  # new work, or quota slots set free
            self._notify(ex, row["queue"])
        self._complete_if_done(ex, job_id, now)
        self._hand_to_waiters(ex, job_id, now)

    def _hand_to_waiters(self, ex: Executor, job_id: int, now: dt.datetime) -> None:
        """Jobs that returned `job_id` adopt its result now."""
        for waiter in ex.all("waiters", id=job_id):
            ex.run("adopt_result", id=waiter["id"], inner=job_id, now=self.ts(now))
            self._settle(ex, waiter["id"], now)

    def _complete_if_done(self, ex: Executor, job_id: int, now: dt.datetime) -> None:
        open_row = ex.one("count_open_callbacks", id=job_id)
        if open_row and open_row["n"]:
            return
        if not ex.run("mark_completed", id=job_id, now=self.ts(now)):
            return
        # A completed callback may be the last open one of its parent.
        parent = ex.one("parent_of", id=job_id)
        if parent and parent["parent_id"] is not None:
            self._tell_parent(ex, parent["parent_id"], now)

    def _tell_parent(self, ex: Executor, parent_id: int, now: dt.datetime) -> None:
        """A callback of `parent_id` completed: the parent completes if it was the last.
        The parent's row is locked first, so concurrent last callbacks count one by one."""
        locked = ex.one("lock_job", id=parent_id)
        if locked and locked["status"] == "callbacks":
            self._complete_if_done(ex, parent_id, now)

    def reschedule(
        self,
        job_id: int,
        attempt: int,
        dispatcher: str,
        when: dt.datetime | None,
        retry_data: dict[str, Any],
        now: dt.datetime,
    ) -> None:
        front = when is None or when <= now
        with self._transaction() as ex:
            n = ex.run(
                "reschedule",
                id=job_id,
                attempt=attempt,
                dispatcher=dispatcher,
                lane=0 if front else 1,
                begin_after=self.ts(now if front else when),
                retry_data=json.dumps(retry_data),
            )
            if n != 1:
                raise ReassignedError(f"job {job_id} attempt {attempt} was reassigned")
            row = ex.one("lock_job", id=job_id)
            assert row is not None
            self._notify(ex, row["queue"])

    def wait_on(
        self,
        job_id: int,
        attempt: int,
        dispatcher: str,
        inner_id: int,
        retry_data: dict[str, Any],
        now: dt.datetime,
        *,
        conn: Any = None,
    ) -> None:
        with self._transaction(conn) as ex:
            inner = ex.one("lock_job", id=inner_id)  # lock the inner job first, as _settle does
            if inner is None:
                raise JobNotFound(f"job {job_id} returned job {inner_id}, which does not exist")
            if self._depends_on(ex, inner_id, job_id):
                # The inner job cannot finish before this one does: waiting would hang both.
                self._fail_waiting(ex, job_id, attempt, dispatcher, inner_id, retry_data, now)
                return
            n = ex.run(
                "wait_on",
                id=job_id,
                attempt=attempt,
                dispatcher=dispatcher,
                inner=inner_id,
                retry_data=json.dumps(retry_data),
            )
            if n != 1:
                raise ReassignedError(f"job {job_id} attempt {attempt} was reassigned")
            ex.run("mark_has_waiters", id=inner_id)  # under the inner job's lock (lock_job)
            if inner["status"] in DONE:
                ex.run("adopt_result", id=job_id, inner=inner_id, now=self.ts(now))
                self._settle(ex, job_id, now)

    def _depends_on(self, ex: Executor, inner_id: int, job_id: int) -> bool:
        """True if `inner_id` needs `job_id`'s result to finish: it is that job, one of its
        callbacks (at any depth), or waits (through any chain) on one of those."""
        seen: set[int] = set()
        todo = [inner_id]
        while todo and len(seen) < 1000:
            current = todo.pop()
            if current == job_id:
                return True
            if current in seen:
                continue
            seen.add(current)
            row = ex.one("wait_links", id=current)
            if row is None or row["status"] in DONE:
                continue
            todo += [j for j in (row["parent_id"], row["waiting_on"]) if j is not None]
        return False

    def _fail_waiting(
        self,
        ex: Executor,
        job_id: int,
        attempt: int,
        dispatcher: str,
        inner_id: int,
        retry_data: dict[str, Any],
        now: dt.datetime,
    ) -> None:
        message = (
            f"job {job_id} returned job {inner_id}, which cannot finish before job {job_id} "
            f"does (the job itself, or one of its callbacks): waiting would never end"
        )
        failure = {
            "type_name": "jobq.errors.BadStatusError",
            "message": message,
            "traceback": f"jobq.errors.BadStatusError: {message}\n",
            "type_names": [
                "jobq.errors.BadStatusError",
                "jobq.errors.JobqError",
                "Exception",
            ],
            "verbose": "",
        }
        row = ex.one(
            "store_result",
            id=job_id,
            attempt=attempt,
            dispatcher=dispatcher,
            result=None,
            result_repr=f"jobq.errors.BadStatusError: {message}",
            failed=True,
            failure=json.dumps(failure),
            retry_data=json.dumps(retry_data),
            now=self.ts(now),
        )
        if row is None:
            raise ReassignedError(f"job {job_id} attempt {attempt} was reassigned")
        self._after_stored(ex, job_id, row, now)

    def fail_unstarted(self, job_id: int, outcome: Outcome, now: dt.datetime) -> bool:
        with self._transaction() as ex:
            n = ex.run(
                "fail_unstarted",
                id=job_id,
                result_repr=outcome.result_repr,
                failure=json.dumps(outcome.failure),
                now=self.ts(now),
            )
            if n == 1:
                self._settle(ex, job_id, now)
            return n == 1

    def add_callback(
        self, parent_id: int, callback: NewJob, now: dt.datetime, *, conn: Any = None
    ) -> int:
        with self._transaction(conn) as ex:
            parent = ex.one("lock_job", id=parent_id)
            if parent is None:
                raise JobNotFound(f"no job with id {parent_id}")
            released = parent["status"] in DONE
            job = dataclasses.replace(
                callback, queue=parent["queue"], parent_id=parent_id, begin_after=now
            )
            new_id = self._insert(ex, job, "pending" if released else "new", now)
            ex.run("mark_has_callbacks", id=parent_id)  # under the parent's lock (lock_job)
            if released:
                self._notify(ex, parent["queue"])
            return new_id
