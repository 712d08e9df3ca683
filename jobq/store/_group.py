"""Group commit: writes arriving from many threads at once share one commit.

Eight threads each completing a job would each wait for a commit of their own: on SQLite a
file sync behind one writer lock, on PostgreSQL a round trip and a WAL flush. Here the first
thread to arrive writes whatever the others queued meanwhile, in one go (`flush`), and each
caller returns only once its own write is committed, as with a transaction of its own.
A caller that need not wait (`submit_then`) gives a function to call once its write is
committed instead; a thread of the group's own then flushes what is queued while nobody else
does.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from jobq.store.driver import Executor

events_log = logging.getLogger("jobq.events")

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Write(Generic[Item]):
    __slots__ = ("done", "item", "result", "then")

    def __init__(self, item: Item, then: Callable[[Any], None] | None = None) -> None:
        self.item = item
        self.result: Any = None  # a value, or the exception to raise in the caller
        self.done = False
        self.then = then  # called once done, for a write submitted without waiting


class GroupCommit(Generic[Item, Result]):
    """`run(item)` from any thread: `flush(items)` writes a batch and returns one result per
    item, an exception instance for an item that failed on its own; if `flush` raises, every
    item of its batch fails with that error (nothing of the batch is committed)."""

    def __init__(self, flush: Callable[[list[Item]], list[Result | BaseException]]) -> None:
        self._flush = flush
        self._cond = threading.Condition()
        self._queued: list[_Write[Item]] = []
        self._flushing = False
        self._flusher: threading.Thread | None = None
        self._closed = False

    def run(self, item: Item) -> Result:
        write = _Write(item)
        with self._cond:
            self._queued.append(write)
            while self._flushing and not write.done:
                self._cond.wait()
            lead = not write.done  # nobody is flushing: lead, taking everything queued
            if lead:
                self._flushing = True
                batch, self._queued = self._queued, []
        if lead:
            self._flush_batch(batch)
        if isinstance(write.result, BaseException):
            raise write.result
        return write.result

    def submit_then(self, item: Item, then: Callable[[Result | BaseException], None]) -> None:
        """Queue `item` and return at once; `then(result)` is called once it is committed,
        with its result or its exception."""
        with self._cond:
            self._queued.append(_Write(item, then))
            if self._flusher is None or not self._flusher.is_alive():
                self._flusher = threading.Thread(
                    target=self._flush_submitted, name="jobq-group-commit", daemon=True
                )
                self._flusher.start()
            self._cond.notify_all()

    def _flush_submitted(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (self._flushing or not self._queued):
                    self._cond.wait()
                if not self._queued:  # closed, and nothing left
                    return
                self._flushing = True
                batch, self._queued = self._queued, []
            self._flush_batch(batch)

    def close(self, timeout: float = 10.0) -> None:
        """Flush what was submitted (waiting up to `timeout` seconds) and stop the thread; a
        later `submit` starts another (a store may be used again after `close`)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            flusher = self._flusher
        if flusher is not None:
            flusher.join(timeout)
        with self._cond:
            self._closed = False
            if self._flusher is flusher and (flusher is None or not flusher.is_alive()):
                self._flusher = None

    def _flush_batch(self, batch: list[_Write[Item]]) -> None:
        """Flush a batch taken by this thread (with `_flushing` set), then let the next go."""
        try:
            self._write(batch)
        finally:
            with self._cond:
                self._flushing = False
                self._cond.notify_all()
            _resolve(batch)

    def _write(self, batch: list[_Write[Item]]) -> None:
        try:
            results = self._flush([write.item for write in batch])
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
    transaction: Callable[[], contextlib.AbstractContextManager[Executor]],
) -> Callable[[list[Callable[[Executor], Any]]], list[Any]]:
    """A `flush` running each `work(executor)` of a batch in one transaction, each in its own
    savepoint, so that one failing (a lost claim raising `ReassignedError`) undoes only its own
    writes."""

    def flush(batch: list[Callable[[Executor], Any]]) -> list[Any]:
        results: list[Any] = []
        if len(batch) == 1:  # alone: its own transaction is its savepoint
            try:
                with transaction() as ex:
                    return [batch[0](ex)]
            except Exception as error:
                return [error]
        with transaction() as ex:
            for work in batch:
                ex.raw("SAVEPOINT jobq_write")
                try:
                    results.append(work(ex))
                except Exception as error:
                    ex.raw("ROLLBACK TO jobq_write")
                    results.append(error)
                ex.raw("RELEASE jobq_write")
        return results

    return flush
