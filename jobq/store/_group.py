"""Group commit: writes arriving from many threads at once share one transaction.

On SQLite every commit is a file sync and there is one writer at a time, so eight threads
each completing a job wait on each other's syncs. Here the first thread to arrive commits
whatever others queued meanwhile, in one transaction; each write runs in its own savepoint,
so one that fails (a lost claim raising `ReassignedError`) leaves the others intact. Every
caller returns only once its write is committed, as with a transaction of its own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from jobq.store._sql import Executor

T = TypeVar("T")


class _Write(Generic[T]):
    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Callable[[Executor], T]) -> None:
        self.work = work
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit:
    """Runs `work(executor)` callables in shared transactions opened by `transaction()`."""

    def __init__(self, transaction: Callable[[], contextlib.AbstractContextManager[Executor]]):
        self._transaction = transaction
        self._cond = threading.Condition()
        self._queued: list[_Write[Any]] = []
        self._committing = False

    def run(self, work: Callable[[Executor], T]) -> T:
        write = _Write(work)
        with self._cond:
            self._queued.append(write)
            while self._committing and not write.done:
                self._cond.wait()
            if not write.done:  # nobody is committing: lead, taking everything queued
                self._committing = True
                batch, self._queued = self._queued, []
        if not write.done:
            try:
                self._commit(batch)
            finally:
                with self._cond:
                    self._committing = False
                    self._cond.notify_all()
        if write.error is not None:
            raise write.error
        return write.result  # type: ignore[return-value]

    def _commit(self, batch: list[_Write[Any]]) -> None:
        try:
            with self._transaction() as ex:
                for write in batch:
                    ex.raw("SAVEPOINT jobq_write")
                    try:
                        write.result = write.work(ex)
                    except Exception as error:
                        ex.raw("ROLLBACK TO jobq_write")
                        write.error = error
                    ex.raw("RELEASE jobq_write")
        except BaseException as error:  # the transaction failed: none of them is committed
            for write in batch:
                write.result, write.error = None, error
            raise
        finally:
            for write in batch:
                write.done = True
