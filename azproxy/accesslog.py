"""One access-log line per request, with what an operator needs and no secret.

The path is logged without its query string: query parameters can carry keys.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .keys import DEPLOYMENT, MODEL, REQUEST_ID, UPSTREAM_STATUS


class AccessLogger(AbstractAccessLogger):
    """`method path model deployment status upstream duration bytes request-id`."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s model=%s deployment=%s status=%d upstream=%s duration_ms=%.1f bytes=%d id=%s",
            request.method,
            request.path,
            request.get(MODEL, "-"),
            request.get(DEPLOYMENT, "-"),
            response.status,
            request.get(UPSTREAM_STATUS, "-"),
            time * 1000,
            response.body_length,
            request.get(REQUEST_ID, "-"),
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
