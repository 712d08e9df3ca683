"""The worker's log handler: INFO lines in batches, a WARNING at once with the lines before it."""

from __future__ import annotations

import io
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobq.cli import log_output
from jobq.cli.log_output import BatchingStreamHandler


class CountingStream(io.StringIO):
    """A stream that counts its writes, as a log file's system calls."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def stream() -> CountingStream:
    return CountingStream()


@pytest.fixture
def logger(stream: CountingStream) -> Iterator[logging.Logger]:
    handler = BatchingStreamHandler(stream, flush_after=0.2)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger(f"test-log-output-{id(stream)}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    yield log
    log.removeHandler(handler)
    handler.close()


def _wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def test_info_lines_are_written_together_within_the_delay(
    logger: logging.Logger, stream: CountingStream
) -> None:
    for i in range(50):
        logger.info("job %d succeeded", i)
    assert stream.getvalue() == ""  # kept, not one write a line
    _wait_for(lambda: stream.getvalue().count("\n") == 50)
    assert stream.getvalue().splitlines() == [f"INFO job {i} succeeded" for i in range(50)]
    assert stream.writes == 1


def test_a_warning_is_written_at_once_after_the_lines_before_it(
    logger: logging.Logger, stream: CountingStream
) -> None:
    logger.info("first")
    logger.debug("second")
    logger.warning("third")
    assert stream.getvalue().splitlines() == ["INFO first", "DEBUG second", "WARNING third"]
    logger.error("fourth")
    assert stream.getvalue().splitlines()[-1] == "ERROR fourth"


def test_flush_writes_what_is_kept_as_logging_shutdown_does_at_exit(
    logger: logging.Logger, stream: CountingStream
) -> None:
    logger.info("kept")
    logger.handlers[0].flush()
    assert stream.getvalue() == "INFO kept\n"


def test_a_long_burst_is_written_before_the_delay_once_enough_lines_are_kept(
    logger: logging.Logger, stream: CountingStream
) -> None:
    for i in range(log_output.MOST_PENDING):
        logger.info("line %d", i)
    assert stream.getvalue().count("\n") == log_output.MOST_PENDING
    assert stream.writes == 1


def test_a_write_that_fails_is_reported_and_the_handler_goes_on(
    stream: CountingStream, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = BatchingStreamHandler(stream)
    failing = True

    def write(text: str) -> int:
        if failing:
            raise OSError("disk full")
        return io.StringIO.write(stream, text)

    monkeypatch.setattr(stream, "write", write)
    monkeypatch.setattr(logging, "raiseExceptions", True)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "lost line", None, None)
    handler.handle(record)
    assert "disk full" in capsys.readouterr().err  # logging's own report of a failed write
    failing = False
    handler.handle(logging.LogRecord("x", logging.ERROR, __file__, 1, "next", None, None))
    assert stream.getvalue() == "next\n"
    handler.close()


def test_a_forked_child_writes_its_own_lines_once_and_in_time(tmp_path: Path) -> None:
    """A job may fork (multiprocessing): the child inherits the handler with the parent's kept
    lines and no writer thread of its own. It writes neither the parent's lines again nor
    keeps its own until its exit (which, for a forked child, writes nothing kept)."""
    out = tmp_path / "log.txt"
    with out.open("w") as stream:
        handler = BatchingStreamHandler(stream, flush_after=0.05)
        handler.setFormatter(logging.Formatter("%(process)d %(message)s"))
        log = logging.getLogger(f"test-log-output-fork-{id(out)}")
        log.propagate, log.handlers = False, [handler]
        log.setLevel(logging.INFO)
        log.info("parent, before the fork")
        with warnings.catch_warnings():  # 3.12+ warns of a fork beside the writer's thread
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: log, wait past the delay, leave without any exit handler
            log.info("child")
            time.sleep(0.5)
            os._exit(0)
        os.waitpid(pid, 0)
        handler.flush()
        lines = out.read_text().splitlines()
        log.removeHandler(handler)
        handler.close()
    assert lines.count(f"{os.getpid()} parent, before the fork") == 1, lines
    assert f"{pid} child" in lines, lines


def test_the_line_formatter_writes_what_logging_formatter_writes() -> None:
    """`LineFormatter` formats each second's date once: its lines are `logging.Formatter`'s,
    within a second, across seconds (and back, as a record made earlier may come later), with
    an exception, and with a date format of its own."""
    ours, stdlib = log_output.LineFormatter(), logging.Formatter(log_output.LOG_FORMAT)
    start = time.time()
    for offset in (0.0, 0.001, 0.999, 1.0, 1.5, 61.25, 0.5, 3600.0):
        record = logging.LogRecord("jobq.trace", logging.INFO, __file__, 1, "a %s", ("b",), None)
        record.created = start + offset
        record.msecs = (record.created - int(record.created)) * 1000
        assert ours.format(record) == stdlib.format(record)
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.makeLogRecord({"msg": "failed", "exc_info": sys.exc_info()})
    assert ours.format(record) == stdlib.format(record)
    assert ours.formatTime(record, "%H:%M") == stdlib.formatTime(record, "%H:%M")
