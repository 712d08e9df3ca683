"""Group commit: writes arriving from many threads at once share one commit.

Eight threads each completing a job would each wait for a commit of their own: on SQLite a
file sync behind one writer lock, on PostgreSQL a round trip and a WAL flush. Here the first
thread to arrive writes whatever the others queued meanwhile, in one go (`flush`), and each
caller returns only once its own write is committed, as with a transaction of its own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from jobq.store._sql import Executor

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Write(Generic[Item]):
    __slots__ = ("done", "item", "result")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: Any = None  # a value, or the exception to raise in the caller
        self.done = False


class GroupCommit(Generic[Item, Result]):
    """`run(item)` from any thread: `flush(items)` writes a batch and returns one result per
    item, an exception instance for an item that failed on its own; if `flush` raises, every
    item of its batch fails with that error (nothing of the batch is committed)."""

    def __init__(self, flush: Callable[[list[Item]], list[Result | BaseException]]) -> None:
        self._flush = flush
        self._cond = threading.Condition()
        self._queued: list[_Write[Item]] = []
        self._flushing = False

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
            try:
                self._write(batch)
            finally:
                with self._cond:
                    self._flushing = False
                    self._cond.notify_all()
        if isinstance(write.result, BaseException):
            raise write.result
        return write.result  # type: ignore[no-any-return]

    def _write(self, batch: list[_Write[Item]]) -> None:
        try:
            results = self._flush([write.item for write in batch])
        except BaseException as error:
            results = [error] * len(batch)
        for write, result in zip(batch, results, strict=True):
            write.result, write.done = result, True


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
