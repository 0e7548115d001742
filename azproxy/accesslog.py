"""One access-log line per request, with what an operator needs and no secret.

The path is logged without its query string: query parameters can carry keys.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .keys import DEPLOYMENT, MODEL, REQUEST_ID, STREAM_RESPONSE, UPSTREAM_STATUS

ACCESS_LOGGER = logging.getLogger("azproxy.access")
# nginx's code for "client closed the connection before the response was complete".
CLIENT_CLOSED = 499


def log_line(
    logger: logging.Logger, request: web.BaseRequest, status: int, seconds: float, sent: int
) -> None:
    """`method path model deployment status upstream duration bytes request-id`."""
    logger.info(
        "%s %s model=%s deployment=%s status=%d upstream=%s duration_ms=%.1f bytes=%d id=%s",
        request.method,
        request.path,
        request.get(MODEL, "-"),
        request.get(DEPLOYMENT, "-"),
        status,
        request.get(UPSTREAM_STATUS, "-"),
        seconds * 1000,
        sent,
        request.get(REQUEST_ID, "-"),
    )


def log_abandoned(request: web.BaseRequest, seconds: float) -> None:
    """The line for a request whose client left first: aiohttp writes none for it."""
    if ACCESS_LOGGER.isEnabledFor(logging.INFO):
        response = request.get(STREAM_RESPONSE)
        sent = response.body_length if response is not None else 0
        log_line(ACCESS_LOGGER, request, CLIENT_CLOSED, seconds, sent)


class AccessLogger(AbstractAccessLogger):
    """aiohttp's hook for completed requests."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        log_line(self.logger, request, response.status, time, response.body_length)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
