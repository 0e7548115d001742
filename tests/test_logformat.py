"""The log line format: exactly `logging.Formatter`'s output, timestamp included."""

from __future__ import annotations

import logging

import pytest

from azproxy.logformat import LINE_FORMAT, LineFormatter


def record_at(created: float, message: str = "hello %s", *args: object) -> logging.LogRecord:
    record = logging.LogRecord("azproxy.access", logging.INFO, __file__, 1, message, args, None)
    record.created = created
    record.msecs = (created - int(created)) * 1000
    return record


# Within one second, across seconds, and back to an earlier second (a record made on another
# thread and formatted late).
TIMES = [1764630000.001, 1764630000.5, 1764630000.999, 1764630001.0, 1764630061.25, 1764630000.2]


def test_lines_match_the_standard_formatter_at_every_time() -> None:
    ours, standard = LineFormatter(), logging.Formatter(LINE_FORMAT)
    for created in TIMES:
        record = record_at(created, "POST %s status=%d", "/v1/chat/completions", 200)
        assert ours.format(record) == standard.format(record)


@pytest.mark.parametrize("created", TIMES)
def test_each_timestamp_matches_on_its_own(created: float) -> None:
    record = record_at(created)
    assert LineFormatter().formatTime(record) == logging.Formatter().formatTime(record)


def test_an_explicit_date_format_is_honoured() -> None:
    record = record_at(TIMES[0])
    expected = logging.Formatter().formatTime(record, "%Y")
    assert LineFormatter().formatTime(record, "%Y") == expected
