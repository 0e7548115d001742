"""The server runner: aiohttp's, with the HTTP parser's own errors answered safely.

aiohttp answers a request it cannot parse (a header over 8 KiB, a malformed request line)
before any middleware runs, with a plain-text page quoting the start of the offending line and
an ERROR log carrying the same text. When that line is `Authorization: Bearer <key>`, both
would leak the key. Here such requests get an OpenAI-shaped error that quotes nothing.
"""

from __future__ import annotations

from http import HTTPStatus

import orjson
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

from .errors import error_body
from .keys import SETTINGS


class SafeRequestHandler(RequestHandler):
    """A protocol handler whose parser errors neither echo nor log the request's bytes."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500 or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        if isinstance(exc, LineTooLong):
            status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
            text = "The request's headers are too large (8 KiB per line at most)."
        else:
            text = "The request could not be parsed as HTTP/1.1."
        self.logger.warning(
            "rejected an unparsable request from %s: %s (%d)",
            request.remote,
            type(exc).__name__,
            status,
        )
        body = error_body(text, "invalid_request_error", None, "invalid_request")
        response = web.Response(
            status=status, body=orjson.dumps(body), content_type="application/json"
        )
        # The app's CORS hooks do not run here; without this a browser sees a network error.
        origins = getattr(self._manager, "cors_origins", ())
        origin = request.headers.get("Origin", "")
        if "*" in origins:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif origin and origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        response.force_close()
        return response


class GatewayRunner(web.AppRunner):
    """`web.AppRunner` whose connections use `SafeRequestHandler`."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds the Server inside the Application and offers no hook for the
        # protocol class; switching the instance's class keeps every other setting as built.
        server.__class__ = _SafeServer
        settings = self.app.get(SETTINGS)
        if settings is not None and isinstance(server, _SafeServer):
            server.cors_origins = settings.cors_origins
        return server


class _SafeServer(web.Server):
    cors_origins: tuple[str, ...] = ()

    def __call__(self) -> RequestHandler:
        return SafeRequestHandler(self, loop=self._loop, **self._kwargs)
