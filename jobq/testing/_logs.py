"""`print_logs`: show jobq's log records (by default CRITICAL and ERROR) in a test's output."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

__all__ = ["print_logs", "stop_printing_logs"]

_FORMAT = "%(levelname)s %(name)s: %(message)s"


class _Handler(logging.StreamHandler):
    """Writes to `stream`, or to whatever `sys.stderr` is at each record (pytest swaps it per
    test to capture output)."""

    def __init__(self, stream: TextIO | None, level: int) -> None:
        super().__init__(stream or sys.stderr)
        self._follow_stderr = stream is None
        self.setLevel(level)
        self.setFormatter(logging.Formatter(_FORMAT))
        self.previous_level = logging.NOTSET

    def emit(self, record: logging.LogRecord) -> None:
        if self._follow_stderr:
            self.stream = sys.stderr
        super().emit(record)


def print_logs(
    level: int | str = logging.ERROR, stream: TextIO | None = None, logger: str = "jobq"
) -> logging.Handler:
    """Send records of `logger` ("jobq": `jobq.events` and `jobq.trace`) at `level` and above
    to `stream` (default: the current `sys.stderr`); returns the handler, for
    `stop_printing_logs`. Lowers the logger's level if needed (restored on stop)."""
    number = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = _Handler(stream, number)
    target = logging.getLogger(logger)
    handler.previous_level = target.level
    if target.getEffectiveLevel() > number:
        target.setLevel(number)
    target.addHandler(handler)
    return handler


def stop_printing_logs(handler: logging.Handler, logger: str = "jobq") -> None:
    """Undo `print_logs`."""
    target = logging.getLogger(logger)
    target.removeHandler(handler)
    if isinstance(handler, _Handler):
        target.setLevel(handler.previous_level)
