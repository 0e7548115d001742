"""The Realtime API: a client's WebSocket relayed frame by frame to Azure's realtime socket.

Credentials, the model and Azure's own handshake are all settled before the client's upgrade
is accepted, so a refusal (no key, unknown deployment, Azure down) reaches the client as an
ordinary OpenAI-shaped HTTP error rather than as a socket that opens and dies.

Browsers cannot set headers on a WebSocket, so besides the usual `api-key` and `Authorization`
headers the key may come as the `api-key` query parameter or as the subprotocol
`openai-insecure-api-key.<key>`. Only `realtime` is ever echoed back; the key never leaves
the gateway except as Azure's `api-key` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Literal
from urllib.parse import urlencode

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from .credentials import Credentials, client_key, credentials_for
from .errors import InvalidRequest, UpstreamTimeout, UpstreamUnreachable, error_body
from .keys import CLIENT_SESSION, DEPLOYMENT, MODEL, REQUEST_ID, SETTINGS
from .relay import RELAYED_HEADERS, RELAYED_PREFIXES, failure_reason
from .responses import json_response
from .settings import V1
from .upstream import host_of

log = logging.getLogger("azproxy.realtime")

REALTIME_PROTOCOL = "realtime"
KEY_PROTOCOL_PREFIX = "openai-insecure-api-key."
# The browser form of `OpenAI-Beta: realtime=v1`, which Azure's preview takes as a header.
BETA_PROTOCOL = "openai-beta.realtime-v1"
# How long closing one side may take (a peer answering our close frame, a stalled write).
CLOSE_TIMEOUT = 5.0
# Ping the client this often: a client that vanished without a FIN must not hold Azure's socket.
CLIENT_HEARTBEAT = 30.0
# Query parameters the gateway itself consumes; the rest (`intent`, …) go to Azure as sent.
_CONSUMED_QUERY = frozenset({"model", "deployment", "api-version", "api-key"})
_WS_SCHEMES = {"http": "ws", "https": "wss"}


class HideKeyProtocols(logging.Filter):
    """Redact key subprotocols from aiohttp's "client protocols don't overlap" warning.

    aiohttp logs every subprotocol a client offered when none is `realtime`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


def _redacted(arg: object) -> object:
    if not isinstance(arg, list):
        return arg
    return [
        f"{KEY_PROTOCOL_PREFIX}***"
        if isinstance(item, str) and item.startswith(KEY_PROTOCOL_PREFIX)
        else item
        for item in arg
    ]


logging.getLogger("aiohttp.websocket").addFilter(HideKeyProtocols())

ClientSocket = web.WebSocketResponse[Literal[False]]
UpstreamSocket = aiohttp.ClientWebSocketResponse[Literal[False]]
Socket = ClientSocket | UpstreamSocket
Frame = tuple[int, str]  # a close frame's code and reason


async def realtime(request: web.Request) -> web.StreamResponse:
    """`GET /v1/realtime?model=…` (and the Azure-style forms): relay one realtime session."""
    credentials = realtime_credentials(request)
    model = _model(request)
    deployment = credentials.deployment_for(model)
    request[MODEL] = model
    request[DEPLOYMENT] = deployment
    max_size = request.app[SETTINGS].max_body
    client: ClientSocket = web.WebSocketResponse(
        protocols=(REALTIME_PROTOCOL,),
        autoping=True,
        heartbeat=CLIENT_HEARTBEAT,
        timeout=CLOSE_TIMEOUT,
        max_msg_size=max_size,
        decode_text=False,
    )
    if not client.can_prepare(request).ok:
        raise InvalidRequest(
            f"{request.path} is a WebSocket endpoint: connect with a WebSocket client.",
            code="websocket_required",
        )
    url = upstream_url(request, credentials, deployment)
    try:
        upstream = await _connect(request, url, credentials)
    except aiohttp.WSServerHandshakeError as exc:
        return refused(exc, host_of(credentials.endpoint), model, deployment)
    try:
        await client.prepare(request)
        await relay(client, upstream)
    finally:
        await upstream.close(code=WSCloseCode.GOING_AWAY)  # a no-op unless relay was cut short
    return client


def realtime_credentials(request: web.Request) -> Credentials:
    """Credentials as for every call, plus the two forms browsers can send."""
    headers = request.headers
    key = client_key(headers.get("api-key"), headers.get("Authorization")) or browser_key(request)
    return credentials_for(request.app[SETTINGS], key)


def browser_key(request: web.Request) -> str | None:
    """The key from the `api-key` query parameter, else from the key subprotocol."""
    query_key = request.query.get("api-key", "").strip()
    if query_key:
        return query_key
    for protocol in offered_protocols(request):
        if protocol.startswith(KEY_PROTOCOL_PREFIX) and len(protocol) > len(KEY_PROTOCOL_PREFIX):
            return protocol.removeprefix(KEY_PROTOCOL_PREFIX)
    return None


def offered_protocols(request: web.Request) -> list[str]:
    """Every subprotocol in the client's `Sec-WebSocket-Protocol` header(s)."""
    return [
        protocol.strip()
        for header in request.headers.getall("Sec-WebSocket-Protocol", ())
        for protocol in header.split(",")
        if protocol.strip()
    ]


def _model(request: web.Request) -> str:
    model = (request.query.get("model") or request.query.get("deployment") or "").strip()
    if not model:
        raise InvalidRequest(
            "You must provide a model parameter: connect to /v1/realtime?model=<model> "
            "(or /openai/realtime?api-version=<version>&deployment=<deployment>).",
            param="model",
            code="missing_model",
        )
    return model


def realtime_api_version(request: web.Request, credentials: Credentials) -> str:
    """`v1` for Azure's GA socket, else the dated preview version to connect with.

    As for every call: `/openai/v1/…` means v1; on `/openai/…` the client's api-version wins;
    then a triple key's version; then AZURE_OPENAI_APIVERSION_REALTIME (default v1).
    """
    if request.path.startswith("/openai/v1/"):
        return V1
    client_version = (
        request.query.get("api-version") if request.path.startswith("/openai/") else None
    )
    settings = request.app[SETTINGS]
    return client_version or settings.api_version_for("realtime", credentials.api_version)


def upstream_url(request: web.Request, credentials: Credentials, deployment: str) -> str:
    """Azure's realtime socket for `deployment`, with the client's other query parameters."""
    extra = [(k, v) for k, v in request.query.items() if k not in _CONSUMED_QUERY]
    return realtime_url(
        credentials.endpoint, deployment, realtime_api_version(request, credentials), extra
    )


def realtime_url(
    endpoint: str, deployment: str, api_version: str, extra: Iterable[tuple[str, str]] = ()
) -> str:
    """`ws(s)://…/openai/v1/realtime?model=D`, or `…/openai/realtime?api-version=V&deployment=D`."""
    scheme, _, rest = endpoint.partition("://")
    base = f"{_WS_SCHEMES.get(scheme, scheme)}://{rest}"
    if api_version == V1:
        return f"{base}/openai/v1/realtime?{urlencode([('model', deployment), *extra])}"
    query = urlencode([("api-version", api_version), ("deployment", deployment), *extra])
    return f"{base}/openai/realtime?{query}"


def upstream_headers(request: web.Request, credentials: Credentials) -> dict[str, str]:
    """The resolved key and a traceable id; of the client's headers only `OpenAI-Beta`."""
    headers = {"api-key": credentials.key, "x-ms-client-request-id": request[REQUEST_ID]}
    beta = request.headers.get("OpenAI-Beta")
    if beta is None and BETA_PROTOCOL in offered_protocols(request):
        beta = "realtime=v1"
    if beta is not None:
        headers["OpenAI-Beta"] = beta
    return headers


async def _connect(request: web.Request, url: str, credentials: Credentials) -> UpstreamSocket:
    """Open Azure's socket within the connect and first-byte timeouts.

    No subprotocol is offered: Azure's clients authenticate with headers, as here.
    """
    settings = request.app[SETTINGS]
    host = host_of(credentials.endpoint)
    try:
        async with asyncio.timeout(settings.first_byte_timeout):
            return await request.app[CLIENT_SESSION].ws_connect(
                url,
                headers=upstream_headers(request, credentials),
                autoping=True,
                heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_TIMEOUT),
                max_msg_size=settings.max_body,
                decode_text=False,
            )
    except aiohttp.WSServerHandshakeError:
        raise
    except TimeoutError:
        raise UpstreamTimeout(
            f"The upstream {host} did not accept the realtime connection in time (connect"
            f" timeout {settings.connect_timeout:g} s, first byte"
            f" {settings.first_byte_timeout:g} s)."
        ) from None
    except aiohttp.ClientError as exc:
        raise UpstreamUnreachable(
            f"Could not reach the upstream {host}: {failure_reason(exc)}."
        ) from None


def refused(
    exc: aiohttp.WSServerHandshakeError, host: str, model: str, deployment: str
) -> web.Response:
    """Azure's refusal of the handshake, as an OpenAI-shaped error with Azure's status."""
    status = exc.status if 400 <= exc.status < 600 else 502
    message = (
        f"The upstream {host} refused the realtime connection for model '{model}' "
        f"(deployment '{deployment}') with HTTP {exc.status}."
    )
    if status == 401:
        message += " Check the Azure OpenAI key."
    elif status == 404:
        message += (
            " Check that the deployment exists and serves a realtime model; "
            "AZURE_OPENAI_MODEL_MAPPER maps model names to deployments."
        )
    error_type = "invalid_request_error" if status < 500 else "upstream_error"
    code = {401: "invalid_api_key", 404: "DeploymentNotFound"}.get(status, "upstream_refused")
    headers = {
        k: v
        for k, v in (exc.headers or {}).items()
        if (lk := k.lower()) != "content-type"
        and (lk in RELAYED_HEADERS or lk.startswith(RELAYED_PREFIXES))
    }
    return json_response(
        error_body(message, error_type, None, code), status=status, headers=headers
    )


async def relay(client: ClientSocket, upstream: UpstreamSocket) -> None:
    """Pump frames both ways until one side ends; then end the other the same way."""
    to_upstream = asyncio.create_task(pump(client, upstream))
    to_client = asyncio.create_task(pump(upstream, client))
    try:
        await asyncio.wait((to_upstream, to_client), return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Also on cancellation (shutdown), which propagates once both sides are closed.
        for task in (to_upstream, to_client):
            task.cancel()  # a no-op for a pump that has finished
        await _close(upstream, _ending(to_upstream, lost=WSCloseCode.GOING_AWAY))
        await _close(client, _ending(to_client, lost=WSCloseCode.BAD_GATEWAY))
        await asyncio.gather(to_upstream, to_client, return_exceptions=True)


async def pump(source: Socket, destination: Socket) -> Frame | None:
    """Copy text and binary frames as received; return `source`'s close frame (None: lost)."""
    while True:
        message = await source.receive()
        if message.type is WSMsgType.TEXT or message.type is WSMsgType.BINARY:
            await destination.send_frame(message.data, message.type)
        elif message.type is WSMsgType.CLOSE:
            return message.data, message.extra or ""
        else:  # CLOSING, CLOSED, ERROR: the source ended without a close frame of its own
            return None


def _ending(task: asyncio.Task[Frame | None], *, lost: int) -> Frame:
    """The close to send the pump's destination: its source's own, else `lost` (1001 if cut)."""
    if not task.done() or task.cancelled():
        return WSCloseCode.GOING_AWAY, ""
    error = task.exception()
    if error is not None:
        log.info("realtime relay ended by %s", type(error).__name__)
        return lost, ""
    frame = task.result()
    if frame is None:
        return lost, ""
    code, reason = frame
    return (code if _sendable(code) else WSCloseCode.OK), reason


def _sendable(code: int) -> bool:
    """Whether a close code may go on the wire (RFC 6455 §7.4: not 1004-1006, not 1015)."""
    return code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999


async def _close(socket: Socket, frame: Frame) -> None:
    """Close `socket` with `frame` (a no-op if closed); past CLOSE_TIMEOUT, drop it."""
    code, reason = frame
    # On timeout aiohttp closes the transport itself; the reason fits, having come from a frame.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await socket.close(code=code, message=reason.encode())
