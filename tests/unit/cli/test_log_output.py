"""The worker's log handler: INFO lines in batches, a WARNING at once with the lines before it."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator

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
