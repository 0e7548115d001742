"""The batching log handler: fewer writes, nothing lost, order kept."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

import pytest

from azproxy.logbuffer import ATOMIC_WRITE, BatchingStreamHandler


class Recorder(io.StringIO):
    """A stream that records each `write` and signals it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        self.writes.append(text)
        self.written.set()
        return len(text)


@pytest.fixture
def stream() -> Recorder:
    return Recorder()


@pytest.fixture
def logger(stream: Recorder) -> Iterator[logging.Logger]:
    handler = BatchingStreamHandler(stream, delay=0.05, limit=200)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger(f"test.logbuffer.{id(stream)}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    yield log
    log.removeHandler(handler)
    handler.close()


async def test_lines_in_a_burst_are_written_together(
    logger: logging.Logger, stream: Recorder
) -> None:
    logger.info("one")
    logger.info("two")
    assert stream.writes == []
    await asyncio.wait_for(stream.written.wait(), 5)
    assert stream.writes == ["INFO one\nINFO two\n"]


async def test_a_warning_is_written_at_once_after_what_waited(
    logger: logging.Logger, stream: Recorder
) -> None:
    logger.info("before")
    logger.warning("trouble")
    assert stream.writes == ["INFO before\nWARNING trouble\n"]
    stream.written.clear()
    logger.info("after")
    await asyncio.wait_for(stream.written.wait(), 5)
    assert stream.writes[-1] == "INFO after\n"


async def test_a_full_buffer_is_written_at_once(logger: logging.Logger, stream: Recorder) -> None:
    for n in range(30):
        logger.info("line %d", n)
    assert stream.writes, "over the 200-byte limit, nothing was written"
    logger.handlers[0].flush()
    assert "".join(stream.writes) == "".join(f"INFO line {n}\n" for n in range(30))


def test_without_an_event_loop_each_line_is_written_at_once(
    logger: logging.Logger, stream: Recorder
) -> None:
    logger.info("no loop here")
    assert stream.writes == ["INFO no loop here\n"]


async def test_flush_writes_what_waits(logger: logging.Logger, stream: Recorder) -> None:
    logger.info("last words")
    logger.handlers[0].flush()  # what logging.shutdown and a stopping worker do
    assert stream.writes == ["INFO last words\n"]


def test_a_timer_on_a_loop_that_stopped_does_not_hold_lines(stream: Recorder) -> None:
    handler = BatchingStreamHandler(stream, delay=60)
    handler.setFormatter(logging.Formatter("%(message)s"))

    async def log_one(text: str) -> None:
        handler.emit(logging.makeLogRecord({"msg": text, "levelno": logging.INFO}))

    asyncio.run(log_one("first"))  # its timer dies with that loop
    asyncio.run(log_one("second"))  # a new timer on this loop; this one dies too
    handler.emit(
        logging.makeLogRecord({"msg": "third", "levelno": logging.INFO})
    )  # no loop: written at once
    assert "".join(stream.writes) == "first\nsecond\nthird\n"


def test_batches_are_written_in_pieces_a_pipe_keeps_whole(stream: Recorder) -> None:
    handler = BatchingStreamHandler(stream, delay=60, limit=1 << 20)
    handler.setFormatter(logging.Formatter("%(message)s"))
    lines = [f"{n:04d} " + "é" * 300 for n in range(40)]  # ~600 bytes each in UTF-8

    async def log_all() -> None:
        for text in lines:
            handler.emit(logging.makeLogRecord({"msg": text, "levelno": logging.INFO}))
        handler.flush()

    asyncio.run(log_all())
    assert "".join(stream.writes) == "".join(f"{text}\n" for text in lines)
    assert len(stream.writes) > 1
    for piece in stream.writes:
        assert len(piece.encode()) <= ATOMIC_WRITE
        assert piece.endswith("\n")
