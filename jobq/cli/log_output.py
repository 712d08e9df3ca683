"""The worker process's log output: lines written in batches rather than one write each.

A worker at the default level logs a line per job outcome. Written and flushed one at a time
(as `logging.StreamHandler` does, and stderr is line-buffered), each line is a system call
that releases the GIL, so that every job's outcome costs the worker's threads another turn on
it. `BatchingStreamHandler` keeps INFO and DEBUG lines for at most `FLUSH_AFTER` seconds and
writes them in one call; a WARNING or worse is written at once, after the lines before it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref
from typing import TextIO

FLUSH_AFTER = 0.1  # seconds an INFO line may wait for the lines after it
MOST_PENDING = 1000  # lines kept at most before they are written, whatever their age

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"


class BatchingStreamHandler(logging.StreamHandler[TextIO]):
    """A `StreamHandler` that writes records below `at_once_from` in batches, within
    `flush_after` seconds of the first one, and a record at or above it at once (with the
    batch before it, in order). `flush()`, which `logging.shutdown` calls at exit, writes
    what is kept. A thread of its own, started with the first kept line, does the timed
    writes; it sleeps until there is a line to write, so an idle worker costs nothing."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        flush_after: float = FLUSH_AFTER,
        at_once_from: int = logging.WARNING,
    ) -> None:
        super().__init__(stream)
        self.flush_after = flush_after
        self.at_once_from = at_once_from
        self._pending: list[str] = []
        self._last: logging.LogRecord | None = None  # for handleError, if a write fails
        self._due = threading.Event()  # a line is kept
        self._writer: threading.Thread | None = None
        # A forked child: the parent's kept lines and writer thread are not its own. Told at
        # the fork, not by comparing os.getpid() at each line (a system call a line).
        handler = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _in_forked_child(handler))

    def _forget_parent(self) -> None:
        self._pending, self._writer, self._due = [], None, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        # Called by `Handler.handle` with the handler's lock held.
        try:
            self._pending.append(self.format(record) + self.terminator)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        self._last = record
        if record.levelno >= self.at_once_from or len(self._pending) >= MOST_PENDING:
            self._write_pending()
        elif not self._due.is_set():
            self._due.set()
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_when_due, name="jobq-log-writer", daemon=True
                )
                self._writer.start()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_pending()
            if self.stream and hasattr(self.stream, "flush"):
                self.stream.flush()  # raises as StreamHandler's does (logging.shutdown ignores)
        finally:
            self.release()

    def _write_when_due(self) -> None:
        while True:
            self._due.wait()
            time.sleep(self.flush_after)  # the lines logged meanwhile join this write
            self.acquire()
            try:
                self._due.clear()
                self._write_pending()
            finally:
                self.release()

    def _write_pending(self) -> None:
        """Write the kept lines in one call and flush the stream (with the lock held)."""
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        try:
            self.stream.write(text)
            if hasattr(self.stream, "flush"):
                self.stream.flush()
        except RecursionError:
            raise
        except Exception:
            if self._last is not None:
                self.handleError(self._last)


def _in_forked_child(handler: weakref.ref[BatchingStreamHandler]) -> None:
    found = handler()
    if found is not None:
        found._forget_parent()


class LineFormatter(logging.Formatter):
    """`logging.Formatter` with each second's date and time formatted once: a busy worker logs
    a line a job, and `strftime` of the same second for each line was about a sixth of the
    line's cost (docs/benchmarks.md). The text is the same as `Formatter`'s."""

    def __init__(self, fmt: str = LOG_FORMAT) -> None:
        super().__init__(fmt)
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached, text = self._second
        if second != cached:
            text = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = (second, text)
        msec_format = self.default_msec_format
        return msec_format % (text, record.msecs) if msec_format else text


def configure_logging(level: str) -> None:
    """The worker process's logging: `level` and above to stderr, through a
    `BatchingStreamHandler`."""
    handler = BatchingStreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter(LOG_FORMAT))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler])
