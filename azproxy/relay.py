"""Relaying the upstream's answer: buffered JSON, and chunk-pumped streams.

Once a streamed response has started its status cannot change, so a late upstream failure is
reported inside the stream, as one final `data: {"error": ...}` event the SDKs raise.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .errors import GatewayError, UpstreamTimeout, UpstreamUnreachable, error_body
from .h1client import ConnectError
from .keys import CLIENT_SESSION, H1_POOL, REQUEST_ID, SETTINGS, STREAM_RESPONSE, UPSTREAM_STATUS
from .normalise import StreamNormaliser, rewrite_model
from .upstream import HOP_BY_HOP, UpstreamCall, select_headers
from .watchdog import IdleWatchdog

log = logging.getLogger("azproxy.relay")


class _Body(Protocol):
    async def readany(self) -> bytes: ...
    async def read(self) -> bytes: ...
    def is_eof(self) -> bool: ...


class UpstreamResponse(Protocol):
    """What the relay reads of an answer: `aiohttp.ClientResponse` or `h1client.H1Response`."""

    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> CIMultiDictProxy[str]: ...
    @property
    def content(self) -> _Body: ...
    @property
    def content_type(self) -> str: ...
    @property
    def charset(self) -> str | None: ...
    @property
    def content_length(self) -> int | None: ...
    def release(self) -> object: ...
    def close(self) -> None: ...


# What a client may see of Azure's response headers.
RELAYED_HEADERS = frozenset(
    {
        "content-type",
        "retry-after",
        "retry-after-ms",
        "x-request-id",
        "apim-request-id",
        "x-ms-region",
        "x-ms-client-request-id",
        "x-should-retry",
        "openai-processing-ms",
        "openai-version",
    }
)
RELAYED_PREFIXES = ("x-ratelimit-",)
# The longest retry-after the official SDKs honour (openai-python ≤ 2.51 and openai-node).
SDK_MAX_RETRY_WAIT = 60.0
# Passthrough reads the body undecoded, so Content-Encoding stays true and is relayed.
_PASSTHROUGH_DROPPED = HOP_BY_HOP


async def forward(
    request: web.Request,
    call: UpstreamCall,
    *,
    passthrough: bool = False,
    client_model: str | None = None,
) -> web.StreamResponse:
    """Send `call` upstream and relay the answer to the client.

    With `client_model`, Azure's answer is made to look like OpenAI's (see `normalise`):
    streams lose Azure's extra events, and bodies and events name the model the client asked for.
    """
    upstream = await _open(request, call)
    try:
        request[UPSTREAM_STATUS] = upstream.status
        headers = _client_headers(request, upstream, passthrough)
        content_type = upstream.headers.get("Content-Type", "")
        if content_type.startswith("text/event-stream"):
            normaliser = StreamNormaliser(client_model) if client_model else None
            response = await pump_events(request, upstream, headers, call.host, normaliser)
        elif content_type.startswith("application/json") or upstream.status >= 400:
            response = await _buffered(request, upstream, headers, call.host)
            if client_model and upstream.status < 300 and isinstance(response.body, bytes):
                response.body = rewrite_model(response.body, client_model)
        else:
            response = await pump_bytes(request, upstream, headers, call.host)
    except BaseException:
        # Cancelled (client gone), failed or interrupted: close, never return it to the pool.
        upstream.close()
        raise
    upstream.release()
    return response


async def _open(request: web.Request, call: UpstreamCall) -> UpstreamResponse:
    settings = request.app[SETTINGS]
    try:
        async with asyncio.timeout(settings.first_byte_timeout):
            return await _send(request.app, call)
    except TimeoutError:
        raise UpstreamTimeout(
            f"The upstream {call.host} did not answer in time (connect timeout "
            f"{settings.connect_timeout:g} s, first byte {settings.first_byte_timeout:g} s)."
        ) from None
    except aiohttp.ClientError as exc:
        if isinstance(exc.__cause__, GatewayError):
            # Our own request body failed while aiohttp was sending it (too large, malformed).
            raise exc.__cause__ from None
        raise UpstreamUnreachable(
            f"Could not reach the upstream {call.host}: {failure_reason(exc)}."
        ) from None


async def _send(app: web.Application, call: UpstreamCall) -> UpstreamResponse:
    pool = app.get(H1_POOL)
    if pool is not None and isinstance(call.body, bytes) and call.method != "HEAD":
        return await pool.request(
            call.method, call.url, call.headers, call.body, decode=call.auto_decompress
        )
    return await app[CLIENT_SESSION].request(
        call.method,
        call.url,
        headers=call.headers,
        data=call.body,
        allow_redirects=False,
        auto_decompress=call.auto_decompress,
    )


def failure_reason(exc: BaseException) -> str:
    """The kind of an upstream failure, safe to show: no URL, query or key."""
    # aiohttp's own messages can quote the URL; give only the kind of failure and the OS reason.
    if isinstance(exc, aiohttp.ClientConnectorError | ConnectError):
        return exc.os_error.strerror or type(exc.os_error).__name__
    return type(exc).__name__


def _client_headers(
    request: web.Request, upstream: UpstreamResponse, passthrough: bool
) -> CIMultiDict[str]:
    if passthrough:
        # The gateway answers CORS itself; the upstream's Access-Control-* would clash.
        headers = CIMultiDict(
            (k, v)
            for k, v in upstream.headers.items()
            if (lk := k.lower()) not in _PASSTHROUGH_DROPPED
            and not lk.startswith("access-control-")
        )
    else:
        headers = select_headers(upstream.headers, RELAYED_HEADERS, RELAYED_PREFIXES)
    if upstream.status == 429 and retry_wait(headers) > SDK_MAX_RETRY_WAIT:
        # The SDKs would retry into a wall (a daily quota says 86400 s): make them fail fast.
        headers["x-should-retry"] = "false"
    upstream_id = upstream.headers.get("x-request-id")
    if upstream_id and "x-request-id" not in request.headers:
        # Azure's id is what its support asks for; the client's own id wins when it sent one.
        request[REQUEST_ID] = upstream_id
    elif upstream_id:
        headers.popall("x-request-id", None)
        headers["x-upstream-request-id"] = upstream_id
    return headers


async def _buffered(
    request: web.Request, upstream: UpstreamResponse, headers: CIMultiDict[str], host: str
) -> web.Response:
    idle = request.app[SETTINGS].stream_idle_timeout
    try:
        if upstream.content.is_eof():
            # All of it came with the head, as a small JSON answer does: no timer to arm.
            body = await upstream.content.read()
        else:
            body = await _read_watched(upstream, idle, host)
    except aiohttp.ClientError as exc:
        raise UpstreamUnreachable(
            f"The upstream {host} failed while sending its response: {failure_reason(exc)}."
        ) from None
    headers.popall("Content-Type", None)
    response = web.Response(status=upstream.status, body=body, headers=headers)
    response.content_type = upstream.content_type
    if upstream.charset:
        response.charset = upstream.charset
    return response


async def _read_watched(upstream: UpstreamResponse, idle: float, host: str) -> bytes:
    """The whole body, or UpstreamTimeout if the upstream falls silent for `idle` seconds."""
    parts: list[bytes] = []
    with IdleWatchdog(idle, upstream.close) as watchdog:
        try:
            while chunk := await upstream.content.readany():
                watchdog.touch()
                parts.append(chunk)
        except aiohttp.ClientError:
            if not watchdog.fired:
                raise
    if watchdog.fired:
        raise UpstreamTimeout(f"The upstream {host} stopped sending its response.")
    return b"".join(parts)


async def pump_events(
    request: web.Request,
    upstream: UpstreamResponse,
    headers: CIMultiDict[str],
    host: str,
    normaliser: StreamNormaliser | None = None,
) -> web.StreamResponse:
    """Relay an SSE stream chunk by chunk; always end on a complete event."""
    headers["Cache-Control"] = "no-cache"
    headers["X-Accel-Buffering"] = "no"
    response = web.StreamResponse(status=upstream.status, headers=headers)
    request[STREAM_RESPONSE] = response
    await response.prepare(request)
    tail, error = await _pump(request, upstream, response, host, normaliser=normaliser)
    ending = _complete_event(tail)
    if error is not None:
        await response.write(ending + error_event(error))
    elif ending:
        await response.write(ending)
    await response.write_eof()
    return response


async def pump_bytes(
    request: web.Request, upstream: UpstreamResponse, headers: CIMultiDict[str], host: str
) -> web.StreamResponse:
    """Relay a non-JSON body (audio, files) as it arrives, without holding it."""
    response = web.StreamResponse(status=upstream.status, headers=headers)
    if upstream.content_length is not None:
        response.content_length = upstream.content_length
    request[STREAM_RESPONSE] = response
    await response.prepare(request)
    _, error = await _pump(request, upstream, response, host)
    if error is not None and request.transport is not None:
        # A binary body cannot carry an error event: cut the connection, so the client sees
        # a truncated download rather than a complete-looking file or a wait for missing bytes.
        request.transport.abort()
        return response
    await response.write_eof()
    return response


async def _pump(
    request: web.Request,
    upstream: UpstreamResponse,
    response: web.StreamResponse,
    host: str,
    *,
    normaliser: StreamNormaliser | None = None,
) -> tuple[bytes, GatewayError | None]:
    """Copy every chunk the moment it arrives.

    Returns the last two bytes written (to complete the final event) and, if the upstream
    failed or fell silent, the error to report; the upstream is closed then.
    """
    idle = request.app[SETTINGS].stream_idle_timeout
    tail = b"\n\n"
    failure: aiohttp.ClientError | None = None
    with IdleWatchdog(idle, upstream.close) as watchdog:
        try:
            while chunk := await upstream.content.readany():
                watchdog.touch()
                if normaliser is not None and not (chunk := normaliser.feed(chunk)):
                    continue
                await response.write(chunk)
                tail = _last_two(tail, chunk)
            if normaliser is not None and (rest := normaliser.flush()):
                await response.write(rest)
                tail = _last_two(tail, rest)
        except aiohttp.ClientError as exc:
            failure = exc
    error: GatewayError
    if watchdog.fired:
        error = UpstreamTimeout(f"The upstream {host} sent nothing for {idle:g} s; stream ended.")
    elif failure is not None:
        error = UpstreamUnreachable(
            f"The upstream {host} failed mid-stream: {failure_reason(failure)}."
        )
    else:
        return tail, None
    upstream.close()
    log.warning("stream from %s ended early: %s", host, error.message)
    return tail, error


def _last_two(tail: bytes, chunk: bytes) -> bytes:
    return chunk[-2:] if len(chunk) >= 2 else tail[-1:] + chunk


def retry_wait(headers: CIMultiDict[str]) -> float:
    """Seconds the upstream asks a client to wait (`retry-after-ms`, else `retry-after`)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers[name]) * scale
        except (KeyError, ValueError):
            continue
    return 0.0


def _complete_event(tail: bytes) -> bytes:
    """What to add so the stream ends with a blank line after its last event."""
    if tail.endswith(b"\n\n") or tail.endswith(b"\r\n\r\n"):
        return b""
    return b"\n" if tail.endswith(b"\n") else b"\n\n"


def error_event(error: GatewayError) -> bytes:
    """One SSE event carrying an OpenAI error object."""
    body = error_body(error.message, error.error_type, error.param, error.code)
    return b"data: " + orjson.dumps(body) + b"\n\n"
