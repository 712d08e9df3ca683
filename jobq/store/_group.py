"""Group commit: writes arriving from many threads at once share one commit.

Eight threads each completing a job would each wait for a commit of their own: on SQLite a
file sync behind one writer lock, on PostgreSQL a round trip and a WAL flush. Here the first
thread to arrive writes whatever the others queued meanwhile, in one go (`flush`), and each
caller returns only once its own write is committed, as with a transaction of its own.
A caller that need not wait (`submit_then`) gives a function to call once its write is
committed instead; a thread of the group's own then flushes what is queued while nobody else
does.
A caller that other threads are likely to join (`run(item, gather=True)`: puts, as from a web
app's request threads) leads only once the other such callers the last commit saw (released
by it, or queued behind it) are queued, up to `gather_wait`: otherwise the first of them back
commits alone, and every other commit holds a single put.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from jobq.store.driver import Executor

events_log = logging.getLogger("jobq.events")

# How long (seconds) an outcome handed over without waiting waits for others to share its
# commit: at thousands of short jobs a second, tens of outcomes share each commit instead of
# a few, for a few milliseconds more before each becomes visible (docs/benchmarks.md).
OUTCOME_LINGER = 0.005

# How long (seconds) after a commit that several gathering callers (puts) saw end (released,
# or queued behind it) the first of them to lead waits for the others to share its commit.
# Without it, 8 threads putting in a loop alternate a commit of one put and one of seven
# (docs/benchmarks.md). A put that comes later, or after a commit that saw no other put,
# never waits; nor does one after a wait ran out while as many as it expects are queued.
GATHER_WAIT = 0.001

Item = TypeVar("Item")
Result = TypeVar("Result")

# Every write passes through here: C-level reads of a batch's fields, not generator frames.
_gathers = operator.attrgetter("gathers")
_item = operator.attrgetter("item")


class _Write(Generic[Item]):
    __slots__ = ("done", "gathers", "item", "lead", "result", "then", "woken")

    def __init__(
        self, item: Item, then: Callable[[Any], None] | None = None, gathers: bool = False
    ) -> None:
        self.item = item
        self.gathers = gathers  # from `run(gather=True)`
        self.result: Any = None  # a value, or the exception to raise in the caller
        self.done = False
        self.then = then  # called once done, for a write submitted without waiting
        # A caller of `run` that waits for a flush in progress holds this lock's other end:
        # released once its write is done, or once it is to lead the next flush (`lead`).
        self.woken: threading.Lock | None = None
        self.lead = False


class GroupCommit(Generic[Item, Result]):
    """`run(item)` from any thread: `flush(items)` writes a batch and returns one result per
    item, an exception instance for an item that failed on its own; if `flush` raises, every
    item of its batch fails with that error (nothing of the batch is committed).

    With `linger` (seconds), a write submitted without waiting (`submit_then`) waits up to
    that long, or until `batch_limit` of them are queued, for others to share its commit; the
    callers of `run` lead without them, so that what they wait for is not held behind the
    submitted writes' commit (on SQLite, their file sync). With no linger, a leader takes
    everything queued. A gathering caller leading within `gather_wait` of a commit that
    several gathering callers saw end waits (up to then) for as many to be queued."""

    def __init__(
        self,
        flush: Callable[[list[Item]], list[Result | BaseException]],
        *,
        linger: float = 0.0,
        batch_limit: int = 64,
        gather_wait: float = GATHER_WAIT,
    ) -> None:
        self._flush = flush
        self._linger = linger
        self._batch_limit = batch_limit
        self._lock = threading.Lock()
        self._submitted_cond = threading.Condition(self._lock)  # the flusher thread waits here
        self._queued: list[_Write[Item]] = []  # from `run`: the next leader takes them
        self._submitted: list[_Write[Item]] = []  # from `submit_then`: for the flusher
        self._first_submitted_at = 0.0  # time.monotonic() of the oldest of `_submitted`
        self._flushing = False
        self._flusher: threading.Thread | None = None
        self._flusher_waits = False  # the flusher waits on `_submitted_cond`
        self._closed = False
        self._gather_wait = gather_wait
        self._gathering = threading.Condition(self._lock)  # a gathering leader waits here
        self._gatherer_waits = False  # a leader waits on `_gathering`
        # Gathering callers at the last flush's end: those it released, and those queued
        # behind it (without the latter, two halves of the threads putting in a loop settle
        # into alternate commits, each half queuing while the other's commit runs).
        self._gatherers = 0
        # How many a leader expects at most: after a wait that ran out, as many as had come
        # (callers whose own work between puts outlasts `gather_wait` never make it, and
        # waiting for them each time only adds `gather_wait` to every commit); one more after
        # each wait that ended with all it waited for.
        self._gather_cap = 1 << 30
        self._gather_target = 0  # what the waiting leader waits for
        self._released_at = 0.0  # time.monotonic() of the last flush's end

    def run(self, item: Item, *, gather: bool = False) -> Result:
        """Each waiting caller is woken once: when its write is done, or to lead the next
        flush (for every write queued meanwhile), never to find it must wait again (save a
        gathering leader's wait for its fellows, at most `gather_wait`).
        `gather`: other threads are likely to make the same call soon (see `_gather`)."""
        write = _Write(item, gathers=gather)
        with self._lock:
            self._queued.append(write)
            if self._gatherer_waits and (not gather or self._gathered()):
                self._gathering.notify()  # the waiting leader has them all, or must not wait
            if self._flushing:
                write.woken = threading.Lock()
                write.woken.acquire()
            else:
                self._flushing = True  # nobody is flushing: lead, taking what is queued
                write.lead = True
        interrupted: BaseException | None = None
        if write.woken is not None:
            try:
                write.woken.acquire()
            except BaseException as error:  # KeyboardInterrupt while queued
                if not self._withdraw(write):
                    raise
                interrupted = error  # handed the lead meanwhile: lead, then raise
        if write.lead:
            with self._lock:
                if gather and interrupted is None:
                    try:
                        self._gather()
                    except BaseException as error:  # KeyboardInterrupt: still lead, then raise
                        interrupted = error
                batch = self._lead()
            self._flush_batch(batch)
            if interrupted is not None:
                raise interrupted
        if isinstance(write.result, BaseException):
            raise write.result
        return write.result

    def _withdraw(self, write: _Write[Item]) -> bool:
        """A caller of `run` interrupted while queued: its write leaves the queue, unless a
        flush took it (it commits; the caller is not told) or handed it the lead, which it
        must take (True): the group would otherwise wait for that lead for ever."""
        with self._lock:
            if write.lead:
                return True
            self._queued = [queued for queued in self._queued if queued is not write]
            return False

    def _gather(self) -> None:
        """Before a gathering caller leads (with the lock held, `_flushing` set): if the last
        flush ended under `gather_wait` ago with several gathering callers (released by it or
        queued behind it), wait until as many gathering writes are queued (at most
        `_gather_cap`), or until `gather_wait` after that flush, or until a caller that does
        not gather queues (a claim or a start is not held for puts). Threads putting in a loop
        then share each commit, instead of the first back committing alone while the others
        are still on their way; a put on its own never waits, and one whose fellows stopped
        putting, or come back later than `gather_wait`, waits once."""
        deadline = self._released_at + self._gather_wait
        self._gather_target = min(self._gatherers, self._gather_cap)
        if self._gather_target < 2 or time.monotonic() >= deadline or self._gathered():
            return
        self._gatherer_waits = True
        try:
            self._gathering.wait_for(
                lambda: self._gathered() or self._queued_gathering() < len(self._queued),
                deadline - time.monotonic(),
            )
        finally:
            self._gatherer_waits = False
        came = self._queued_gathering()
        if came >= self._gather_target:
            self._gather_cap = self._gather_target + 1
        elif came == len(self._queued):  # ran out, not cut short: expect as many as came
            self._gather_cap = max(1, came)

    def _queued_gathering(self) -> int:
        """How many of the queued writes gather."""
        return sum(map(_gathers, self._queued))

    def _gathered(self) -> bool:
        """As many gathering writes are queued as the waiting leader waits for."""
        return self._queued_gathering() >= self._gather_target

    def _lead(self) -> list[_Write[Item]]:
        """The batch of a caller of `run` leading a flush (with the lock held)."""
        batch, self._queued = self._queued, []
        if self._submitted_are_due():
            batch += self._submitted
            self._submitted = []
        return batch

    def _submitted_are_due(self) -> bool:
        """The submitted writes have lingered long enough (or fill a batch): a leader takes
        them, since callers of `run` leading one flush after another would otherwise keep the
        flusher thread from ever taking its turn."""
        return self._linger_left() == 0.0

    def submit_then(self, item: Item, then: Callable[[Result | BaseException], None]) -> None:
        """Queue `item` and return at once; `then(result)` is called once it is committed,
        with its result or its exception."""
        with self._lock:
            if not self._submitted:
                self._first_submitted_at = time.monotonic()
            self._submitted.append(_Write(item, then))
            if self._flusher is None or not self._flusher.is_alive():
                self._flusher = threading.Thread(
                    target=self._flush_submitted, name="jobq-group-commit", daemon=True
                )
                self._flusher.start()
            elif self._flusher_waits and (
                len(self._submitted) == 1 or len(self._submitted) >= self._batch_limit
            ):
                self._submitted_cond.notify()  # its linger starts, or its batch is full

    def _flush_submitted(self) -> None:
        """The flusher thread: commits the submitted writes once they are due (they lingered
        `linger`, or fill a batch) and no flush is under way. It is woken only when that may
        have come: the first write submitted (its linger begins), a full batch, a flush
        ending with due writes, a close; a flush that ends while they still linger does not
        wake it (each such wake was a context switch, and a turn on the GIL, for nothing)."""
        while True:
            with self._lock:
                self._flusher_waits = True
                while True:
                    left = self._linger_left()  # one reading of the clock decides the wait
                    if not self._flushing and (self._closed or left == 0.0):
                        break  # due, or closing, and nobody flushing
                    # Until due; nothing submitted, or due behind a flush: until woken.
                    self._submitted_cond.wait(left or None)
                self._flusher_waits = False
                if not self._submitted:  # only a close ends the wait with nothing submitted
                    self._flusher = None  # a write submitted from now on starts another
                    return
                self._flushing = True
                batch, self._submitted = self._submitted, []
                batch += self._queued
                self._queued = []
            self._flush_batch(batch)

    def _may_flush_submitted(self) -> bool:
        """The flusher's turn (with the lock held): writes submitted and due, none flushing."""
        return not self._flushing and self._linger_left() == 0.0

    def _linger_left(self) -> float | None:
        """Seconds (with the lock held) until the submitted writes are due, 0.0 once they are
        (they lingered `linger`, or fill a batch); None with nothing submitted. The flusher
        decides from one reading of the clock whether to flush and how long to sleep: with
        two, writes coming due between them had it sleep until woken, and nothing wakes it for
        writes already submitted (on PostgreSQL only the flusher commits outcomes)."""
        if not self._submitted:
            return None
        if not self._linger or len(self._submitted) >= self._batch_limit:
            return 0.0
        return max(0.0, self._first_submitted_at + self._linger - time.monotonic())

    def close(self, timeout: float = 10.0) -> None:
        """Flush what was submitted (waiting up to `timeout` seconds) and stop the thread; a
        later `submit` starts another (a store may be used again after `close`)."""
        with self._lock:
            self._closed = True
            self._submitted_cond.notify_all()
            flusher = self._flusher
        if flusher is not None:
            flusher.join(timeout)
        with self._lock:
            self._closed = False
            if self._flusher is flusher and (flusher is None or not flusher.is_alive()):
                self._flusher = None

    def _flush_batch(self, batch: list[_Write[Item]]) -> None:
        """Flush a batch taken by this thread (with `_flushing` set), then let the next go."""
        try:
            self._write(batch)
        finally:
            with self._lock:
                self._gatherers = sum(map(_gathers, batch)) + self._queued_gathering()
                self._released_at = time.monotonic()
                for write in batch:
                    if write.woken is not None:
                        write.woken.release()  # done: its caller returns
                for waiting in self._queued:  # the first caller queued meanwhile leads next
                    if waiting.woken is not None:
                        waiting.lead = True
                        waiting.woken.release()
                        break
                else:
                    self._flushing = False
                    if self._flusher_waits and (self._closed or self._may_flush_submitted()):
                        self._submitted_cond.notify()
            _resolve(batch)

    def _write(self, batch: list[_Write[Item]]) -> None:
        try:
            results = self._flush(list(map(_item, batch)))
            if len(results) != len(batch):  # a bug of the flush: no write may pass for done
                raise RuntimeError(f"a flush of {len(batch)} writes gave {len(results)} results")
        except BaseException as error:
            results = [error] * len(batch)
        for write, result in zip(batch, results, strict=True):
            write.result, write.done = result, True


def _resolve(batch: list[_Write[Any]]) -> None:
    """Tell submitted writes how they ended: after the flush has ended, since what they call
    may write through the group again. One that fails is logged, and the others are still told
    (a write left untold would keep its job held by its worker)."""
    for write in batch:
        if write.then is not None:
            try:
                write.then(write.result)
            except Exception as error:
                events_log.critical("error after a group commit: %r", error, exc_info=True)


def in_savepoints(
    transaction: Callable[..., contextlib.AbstractContextManager[Executor]],
) -> Callable[[list[Callable[[Executor], Any]]], list[Any]]:
    """A `flush` running each `work(executor)` of a batch in one transaction. A batch runs
    first without savepoints (they cost two statements a write, and writes rarely fail); if a
    work raises (a lost claim raising `ReassignedError`), that transaction is undone and the
    batch runs again with each work in its own savepoint, so that the failing one undoes only
    its own writes. The works are SQL only, so running them again changes nothing else. The
    transaction is `durable` unless every work of the batch says it need not be (its
    `durable` attribute: a claim or a start, which a crash of the machine may undo)."""

    def flush(batch: list[Callable[[Executor], Any]]) -> list[Any]:
        if len(batch) == 1:  # alone: its own transaction is its savepoint
            try:
                with transaction(durable=getattr(batch[0], "durable", True)) as ex:
                    return [batch[0](ex)]
            except Exception as error:
                return [error]
        durable = any(getattr(work, "durable", True) for work in batch)
        a_work_failed = False
        try:
            with transaction(durable=durable) as ex:
                results: list[Any] = []
                for work in batch:
                    try:
                        results.append(work(ex))
                    except Exception:
                        a_work_failed = True
                        raise
                return results
        except Exception:
            if not a_work_failed:
                raise  # the transaction itself failed (its commit): every write fails
        return _each_in_a_savepoint(transaction, batch, durable)

    return flush


def _each_in_a_savepoint(
    transaction: Callable[..., contextlib.AbstractContextManager[Executor]],
    batch: list[Callable[[Executor], Any]],
    durable: bool,
) -> list[Any]:
    results: list[Any] = []
    with transaction(durable=durable) as ex:
        for work in batch:
            ex.raw("SAVEPOINT jobq_write")
            try:
                results.append(work(ex))
            except Exception as error:
                ex.raw("ROLLBACK TO jobq_write")
                results.append(error)
            ex.raw("RELEASE jobq_write")
    return results
