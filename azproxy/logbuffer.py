"""A log handler that writes lines in batches: one `write` per batch instead of per line.

One access-log line per request made the handler's `write` + `flush` a system call on every
request. Lines are kept for at most `delay` seconds, or until `limit` bytes are waiting, and
a WARNING or worse is written at once, with whatever waits before it, so order is kept.
nginx's `access_log … buffer= flush=` does the same.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TextIO

# POSIX makes a pipe write of at most this many bytes atomic: worker processes sharing one
# stderr pipe (Docker, journald) then never tear each other's lines.
ATOMIC_WRITE = 4096


class BatchingStreamHandler(logging.StreamHandler[TextIO]):
    """A StreamHandler that holds formatted lines briefly and writes them together."""

    def __init__(self, stream: TextIO, delay: float = 0.1, limit: int = 64 * 1024) -> None:
        super().__init__(stream)
        self.delay = delay
        self.limit = limit
        self._lines: list[str] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._lines.append(line)
        self._size += len(line)
        if record.levelno >= logging.WARNING or self._size >= self.limit:
            self.flush()
            return
        loop = _running_loop()
        if loop is None:
            self.flush()  # no event loop in this thread: nothing would flush it later
        elif self._timer is None or self._timer_loop is not loop:
            # (A timer on another loop, perhaps one that has stopped, cannot be relied on.)
            self._timer = loop.call_later(self.delay, self._flush_from_timer)
            self._timer_loop = loop

    def _flush_from_timer(self) -> None:
        self.acquire()
        try:
            if self._timer_loop is _running_loop():
                self._timer = None
            self.flush()
        finally:
            self.release()

    def flush(self) -> None:
        if self._timer is not None and self._timer_loop is _running_loop():
            # Only the timer's own loop may cancel it; elsewhere it fires and finds nothing.
            self._timer.cancel()
            self._timer = None
        if self._lines:
            lines = self._lines
            self._lines = []
            self._size = 0
            try:
                for piece in _pieces(lines):
                    self.stream.write(piece)
                    self.stream.flush()
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": "log write failed"}))
        super().flush()


def _pieces(lines: list[str]) -> list[str]:
    """The lines joined into writes of at most ATOMIC_WRITE bytes (a longer line alone)."""
    pieces: list[str] = []
    batch: list[str] = []
    size = 0
    for line in lines:
        length = len(line) if line.isascii() else len(line.encode("utf-8", "replace"))
        if batch and size + length > ATOMIC_WRITE:
            pieces.append("".join(batch))
            batch, size = [], 0
        batch.append(line)
        size += length
    if batch:
        pieces.append("".join(batch))
    return pieces


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
