"""Looking at pending jobs without running them: `all_enqueued`, `assert_enqueued`,
`refute_enqueued`.

A job matches when every criterion given matches:
- `callable`: the job's function itself (`send_mail`), or its import path as a string
  (`"myapp.mail:send_mail"`, or just the qualified name `"send_mail"`);
- `args`: the positional arguments, all of them, in order (a tuple or list);
- `kwargs`: these keyword arguments (others may be there too);
- `due`: True for jobs due now by the Database's clock, False for jobs scheduled later.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from jobq.model.job import Job
from jobq.testing._wait import describe_job

if TYPE_CHECKING:
    from jobq.database import Database
    from jobq.queue import Queue

__all__ = ["all_enqueued", "assert_enqueued", "due_pending", "refute_enqueued"]

_SHOWN = 20
_ANY: Any = object()


def _start(job: Job) -> dt.datetime | None:
    """When a pending job becomes claimable: the later of its put time and `begin_after`."""
    times = [t for t in (job.begin_after, job.created) if t is not None]
    return max(times) if times else None


def due_pending(db: Database, queues: Iterable[str]) -> list[Job]:
    """The pending jobs of `queues` that are due now by `db.clock`, in queue order."""
    now = db.clock.now()
    due = []
    for name in queues:
        for job in db.queue(name):
            start = _start(job)
            if start is None or start <= now:
                due.append(job)
    return due


def _path(func: Any) -> str:
    module = getattr(func, "__module__", None) or "?"
    qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}:{qualname}"


def _callable_matches(func: Any, wanted: Any) -> bool:
    while isinstance(func, Job):  # Job(Job(f, 1), 2): the function is f
        func = func.callable
    if isinstance(wanted, str):
        path = _path(func)
        return wanted == path or wanted == path.partition(":")[2]
    if func is wanted or func == wanted:
        return True
    return _path(func) == _path(wanted)  # e.g. a bound method of an unpickled copy


def _criteria(
    callable: Any, args: Sequence[Any] | None, kwargs: dict[str, Any] | None, due: bool | None
) -> str:
    parts = []
    if callable is not _ANY:
        parts.append(callable if isinstance(callable, str) else _path(callable))
    if args is not None:
        parts.append(f"args {tuple(args)!r}")
    if kwargs is not None:
        parts.append(f"kwargs including {kwargs!r}")
    if due is not None:
        parts.append("due now" if due else "scheduled for later")
    return ", ".join(parts) if parts else "anything"


def all_enqueued(
    queue: Queue,
    callable: Callable[..., Any] | str = _ANY,
    *,
    args: Sequence[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    due: bool | None = None,
) -> list[Job]:
    """The pending jobs of `queue` that match (see the module docstring), in queue order."""
    now = queue.db.clock.now()
    found = []
    for job in queue:
        if callable is not _ANY and not _callable_matches(job.callable, callable):
            continue
        if args is not None and tuple(job.args) != tuple(args):
            continue
        if kwargs is not None and any(
            k not in job.kwargs or job.kwargs[k] != v for k, v in kwargs.items()
        ):
            continue
        if due is not None:
            start = _start(job)
            if (start is None or start <= now) != due:
                continue
        found.append(job)
    return found


def _listing(queue: Queue) -> str:
    jobs = []
    for i, job in enumerate(queue):
        if i == _SHOWN:
            jobs.append(f"  ... and {len(queue) - _SHOWN} more")
            break
        when = "" if job.begin_after is None else f", begin_after {job.begin_after.isoformat()}"
        jobs.append(f"  {describe_job(job)}{when}")
    if not jobs:
        return f"queue {queue.name!r} has no pending job"
    return f"pending in queue {queue.name!r}:\n" + "\n".join(jobs)


def assert_enqueued(
    queue: Queue,
    callable: Callable[..., Any] | str = _ANY,
    *,
    args: Sequence[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    due: bool | None = None,
    count: int | None = None,
) -> list[Job]:
    """Fail (AssertionError listing what is pending) unless some pending job of `queue`
    matches, or exactly `count` do; returns the matching jobs."""
    found = all_enqueued(queue, callable, args=args, kwargs=kwargs, due=due)
    wanted = _criteria(callable, args, kwargs, due)
    if count is None and not found:
        raise AssertionError(f"expected a pending job matching {wanted}; none.\n{_listing(queue)}")
    if count is not None and len(found) != count:
        raise AssertionError(
            f"expected {count} pending job(s) matching {wanted}; found {len(found)}.\n"
            f"{_listing(queue)}"
        )
    return found


def refute_enqueued(
    queue: Queue,
    callable: Callable[..., Any] | str = _ANY,
    *,
    args: Sequence[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    due: bool | None = None,
) -> None:
    """Fail (AssertionError naming the matches) if any pending job of `queue` matches."""
    found = all_enqueued(queue, callable, args=args, kwargs=kwargs, due=due)
    if found:
        names = "\n".join(f"  {describe_job(job)}" for job in found[:_SHOWN])
        raise AssertionError(
            f"expected no pending job matching {_criteria(callable, args, kwargs, due)}; "
            f"found {len(found)}:\n{names}"
        )
