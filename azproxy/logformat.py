"""The log line format, with its timestamp text worked out once a second instead of per line."""

from __future__ import annotations

import logging
import time

LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LineFormatter(logging.Formatter):
    """`logging.Formatter(LINE_FORMAT)`, with the same output, at less cost per line.

    `strftime` of the local time was the dearest step of an access-log line (~1.7 % of a
    request's CPU in the benchmark's profile); lines within one second share that text.
    """

    def __init__(self) -> None:
        super().__init__(LINE_FORMAT)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            # The text first: a reader that sees the new second also sees its text.
            self._stamp = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = second
        msec_format = self.default_msec_format
        return msec_format % (self._stamp, record.msecs) if msec_format else self._stamp
