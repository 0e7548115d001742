"""The realtime WebSocket relay, end to end on real sockets against a small fake Azure.

The fake plays Azure's realtime socket: it checks the `api-key` header, records the handshake
and every frame, answers `session.created` / `session.updated`, echoes the rest, and closes or
drops its side on command. The gateway is a bare application around `realtime` with the
gateway's session and error middleware, so these tests do not depend on app.py's routes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.test_utils import TestServer
from yarl import URL

from azproxy.app import create_app
from azproxy.keys import DEPLOYMENT, MODEL
from azproxy.middlewares import Handler
from azproxy.settings import load_settings

from .support import KEY, ServerFactory, auth

REALTIME_PATHS = ("/v1/realtime", "/realtime", "/openai/v1/realtime", "/openai/realtime")
MODEL_NAME = "gpt-4o-realtime"
WAIT = 5.0


@dataclass
class Handshake:
    """What the fake Azure saw of one accepted handshake."""

    path_qs: str
    headers: dict[str, str]


@dataclass
class FakeAzure:
    """A fake Azure realtime endpoint and everything it saw."""

    key: str = KEY
    handshakes: list[Handshake] = field(default_factory=list)
    received: list[str | bytes] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    close_reason: str | None = None
    refused: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("api-key") != self.key:
            self.refused += 1
            body = {"error": {"code": "401", "message": "Access denied: invalid key."}}
            return web.json_response(body, status=401)
        self.handshakes.append(Handshake(request.path_qs, dict(request.headers)))
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        try:
            await ws.send_json(
                {"type": "session.created", "event_id": "evt_0", "session": {"type": "realtime"}}
            )
            await self._serve(request, ws)
        finally:
            self.close_code = ws.close_code
            self.closed.set()
        return ws

    async def _serve(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        while True:
            message = await ws.receive()
            if message.type is WSMsgType.BINARY:
                self.received.append(message.data)
                await ws.send_bytes(message.data)
            elif message.type is WSMsgType.TEXT:
                self.received.append(message.data)
                await self._answer(request, ws, json.loads(message.data), message.data)
            else:
                if message.type is WSMsgType.CLOSE:
                    self.close_reason = message.extra
                return

    async def _answer(
        self, request: web.Request, ws: web.WebSocketResponse, event: dict[str, Any], text: str
    ) -> None:
        if event["type"] == "session.update":
            await ws.send_json(
                {"type": "session.updated", "event_id": "evt_1", "session": event["session"]}
            )
        elif event["type"] == "test.close":
            await ws.close(code=event["code"], message=event["reason"].encode())
        elif event["type"] == "test.drop":
            assert request.transport is not None
            request.transport.abort()
        else:
            await ws.send_str(text)


@dataclass
class Handled:
    """What the gateway's handler left behind: that it returned, and the access-log fields."""

    finished: asyncio.Event = field(default_factory=asyncio.Event)
    logged: dict[str, str] = field(default_factory=dict)


@dataclass
class RealtimeGateway:
    """A running gateway with the realtime routes."""

    server: TestServer
    handled: Handled

    def url(self, path: str) -> URL:
        return self.server.make_url(path)


GatewayStarter = Callable[..., Awaitable[RealtimeGateway]]


@pytest.fixture
def fake() -> FakeAzure:
    return FakeAzure()


def fake_app(fake: FakeAzure) -> web.Application:
    app = web.Application()
    for prefix in ("", "/{resource}"):
        app.router.add_get(f"{prefix}/openai/v1/realtime", fake.handle)
        app.router.add_get(f"{prefix}/openai/realtime", fake.handle)
    return app


@pytest.fixture
async def fake_url(aiohttp_server: ServerFactory, fake: FakeAzure) -> str:
    server = await aiohttp_server(fake_app(fake))
    return str(server.make_url("")).rstrip("/")


def gateway_app(env: dict[str, str], handled: Handled) -> web.Application:
    """The real gateway app, with a middleware noting what the access log would show."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            handled.logged.update(
                {"model": request.get(MODEL, "-"), "deployment": request.get(DEPLOYMENT, "-")}
            )
            handled.finished.set()

    app = create_app(load_settings(env))
    app.middlewares.append(record)
    return app


@pytest.fixture
def start_gateway(aiohttp_server: ServerFactory, fake_url: str) -> GatewayStarter:
    async def start(**env: str) -> RealtimeGateway:
        handled = Handled()
        app = gateway_app({"AZURE_OPENAI_ENDPOINT": fake_url, **env}, handled)
        # A short shutdown timeout: an open relay is cancelled 0.5 s into the server's close.
        return RealtimeGateway(await aiohttp_server(app, shutdown_timeout=0.5), handled)

    return start


@pytest.fixture
async def gateway(start_gateway: GatewayStarter) -> RealtimeGateway:
    return await start_gateway()


async def receive(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    async with asyncio.timeout(WAIT):
        return await ws.receive()


async def receive_event(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await receive(ws)
    assert message.type is WSMsgType.TEXT, message
    event = json.loads(message.data)
    assert isinstance(event, dict)
    return event


async def wait_for(event: asyncio.Event) -> None:
    async with asyncio.timeout(WAIT):
        await event.wait()


def upgrade_headers(**extra: str) -> dict[str, str]:
    """A WebSocket handshake by hand, to read the raw answer."""
    return {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        **extra,
    }


async def error_of(response: aiohttp.ClientResponse) -> dict[str, Any]:
    assert response.content_type == "application/json"
    body = await response.json()
    assert isinstance(body, dict)
    error = body["error"]
    assert isinstance(error, dict)
    return error


# --- credentials ------------------------------------------------------------------------------

KEY_FORMS: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {
    "authorization": ("", auth(), ()),
    "api-key header": ("", {"api-key": KEY}, ()),
    "api-key query": (f"&api-key={KEY}", {}, ()),
    "subprotocol": ("", {}, ("realtime", f"openai-insecure-api-key.{KEY}")),
}


@pytest.mark.parametrize("form", KEY_FORMS)
async def test_key_forms(
    form: str, gateway: RealtimeGateway, fake: FakeAzure, http: aiohttp.ClientSession
) -> None:
    query, headers, protocols = KEY_FORMS[form]
    url = gateway.url(f"/v1/realtime?model={MODEL_NAME}{query}")
    async with http.ws_connect(url, headers=headers, protocols=protocols) as ws:
        assert (await receive_event(ws))["type"] == "session.created"
        assert ws.protocol == ("realtime" if protocols else None)
    (handshake,) = fake.handshakes
    assert handshake.path_qs == f"/openai/v1/realtime?model={MODEL_NAME}"  # no api-key in it
    assert handshake.headers["api-key"] == KEY
    assert "Authorization" not in handshake.headers
    assert "Sec-WebSocket-Protocol" not in handshake.headers
    assert handshake.headers["x-ms-client-request-id"]


async def test_key_subprotocol_is_never_echoed(
    gateway: RealtimeGateway, fake: FakeAzure, http: aiohttp.ClientSession
) -> None:
    protocols = f"realtime, openai-insecure-api-key.{KEY}"
    response = await http.get(
        gateway.url(f"/v1/realtime?model={MODEL_NAME}"),
        headers=upgrade_headers(**{"Sec-WebSocket-Protocol": protocols}),
        read_until_eof=False,
    )
    try:
        assert response.status == 101
        assert response.headers["Sec-WebSocket-Protocol"] == "realtime"
        assert all(KEY not in f"{k}: {v}" for k, v in response.headers.items())
    finally:
        response.close()  # the client vanishes without a close frame
    await wait_for(fake.closed)
    assert fake.close_code == WSCloseCode.GOING_AWAY
    await wait_for(gateway.handled.finished)


async def test_key_subprotocol_alone_works_and_is_not_logged(
    gateway: RealtimeGateway, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    url = gateway.url(f"/v1/realtime?model={MODEL_NAME}")
    with caplog.at_level(logging.DEBUG):
        async with http.ws_connect(url, protocols=(f"openai-insecure-api-key.{KEY}",)) as ws:
            assert (await receive_event(ws))["type"] == "session.created"
            assert ws.protocol is None  # nothing to echo: the key never is
    warned = [r for r in caplog.records if r.name == "aiohttp.websocket"]
    assert warned  # aiohttp's no-overlap warning, redacted
    assert KEY not in caplog.text


async def test_triple_key_picks_resource_deployment_and_version(
    start_gateway: GatewayStarter, fake_url: str, fake: FakeAzure, http: aiohttp.ClientSession
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_RESOURCE_ENDPOINT=f"{fake_url}/{{resource}}")
    for triple, expected in (
        (f"myres:{MODEL_NAME}|rt-deploy:{KEY}", "/myres/openai/v1/realtime?model=rt-deploy"),
        # A triple key's version stands in for AZURE_OPENAI_APIVERSION; realtime's own
        # family default (v1) still wins over it.
        (f"other:rt-x:{KEY}:2025-04-01-preview", "/other/openai/v1/realtime?model=rt-x"),
    ):
        url = gateway.url(f"/v1/realtime?model={MODEL_NAME}")
        async with http.ws_connect(url, headers=auth(triple)) as ws:
            assert (await receive_event(ws))["type"] == "session.created"
        assert fake.handshakes[-1].path_qs == expected
        assert fake.handshakes[-1].headers["api-key"] == KEY


async def test_operator_token_replaces_the_client_key(
    start_gateway: GatewayStarter, fake: FakeAzure, http: aiohttp.ClientSession
) -> None:
    fake.key = "operator-token"
    gateway = await start_gateway(AZURE_OPENAI_TOKEN="operator-token")
    url = gateway.url(f"/v1/realtime?model={MODEL_NAME}")
    for headers in ({}, auth("a-client-key")):
        async with http.ws_connect(url, headers=headers) as ws:
            assert (await receive_event(ws))["type"] == "session.created"
    assert [h.headers["api-key"] for h in fake.handshakes] == ["operator-token"] * 2


async def test_no_key_is_401_before_any_upgrade(
    gateway: RealtimeGateway, fake: FakeAzure, http: aiohttp.ClientSession
) -> None:
    url = gateway.url(f"/v1/realtime?model={MODEL_NAME}")
    async with http.get(url, headers=upgrade_headers()) as response:
        assert response.status == 401
        assert (await error_of(response))["code"] == "missing_api_key"
    assert fake.handshakes == []
    assert fake.refused == 0


# --- model, deployment and the upstream URL ---------------------------------------------------


@pytest.mark.parametrize(
    ("env", "path", "expected"),
    [
        ({}, f"/v1/realtime?model={MODEL_NAME}", "/openai/v1/realtime?model=rt-prod"),
        ({}, f"/realtime?model={MODEL_NAME}", "/openai/v1/realtime?model=rt-prod"),
        (
            {"AZURE_OPENAI_APIVERSION_REALTIME": "2025-04-01-preview"},
            f"/v1/realtime?model={MODEL_NAME}",
            "/openai/realtime?api-version=2025-04-01-preview&deployment=rt-prod",
        ),
        (
            {"AZURE_OPENAI_APIVERSION_REALTIME": "2025-04-01-preview"},
            f"/openai/v1/realtime?model={MODEL_NAME}",
            "/openai/v1/realtime?model=rt-prod",
        ),
        (
            {},
            f"/openai/realtime?api-version=2024-10-01-preview&deployment={MODEL_NAME}",
            "/openai/realtime?api-version=2024-10-01-preview&deployment=rt-prod",
        ),
        (
            {},
            f"/v1/realtime?model={MODEL_NAME}&intent=transcription&api-key={KEY}",
            "/openai/v1/realtime?model=rt-prod&intent=transcription",
        ),
        ({}, "/v1/realtime?model=unmapped", "/openai/v1/realtime?model=unmapped"),
    ],
)
async def test_upstream_url(
    env: dict[str, str],
    path: str,
    expected: str,
    start_gateway: GatewayStarter,
    fake: FakeAzure,
    http: aiohttp.ClientSession,
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_MODEL_MAPPER=f"{MODEL_NAME}=rt-prod", **env)
    async with http.ws_connect(gateway.url(path), headers=auth()) as ws:
        assert (await receive_event(ws))["type"] == "session.created"
    assert [h.path_qs for h in fake.handshakes] == [expected]
    await wait_for(gateway.handled.finished)
    if "unmapped" in path:
        assert gateway.handled.logged == {"model": "unmapped", "deployment": "unmapped"}
    else:
        assert gateway.handled.logged == {"model": MODEL_NAME, "deployment": "rt-prod"}


async def test_beta_header_forwarded_client_secrets_not(
    gateway: RealtimeGateway, fake: FakeAzure, http: aiohttp.ClientSession
) -> None:
    url = gateway.url(f"/v1/realtime?model={MODEL_NAME}")
    headers = {**auth(), "OpenAI-Beta": "realtime=v1", "Cookie": "session=secret"}
    async with http.ws_connect(url, headers=headers, origin="https://ui.example") as ws:
        await receive_event(ws)
    protocols = ("realtime", f"openai-insecure-api-key.{KEY}", "openai-beta.realtime-v1")
    async with http.ws_connect(url, protocols=protocols) as ws:
        await receive_event(ws)
    for handshake in fake.handshakes:
        assert handshake.headers["OpenAI-Beta"] == "realtime=v1"
        assert not {"Authorization", "Cookie", "Origin"} & handshake.headers.keys()


async def test_no_model_is_400(gateway: RealtimeGateway, http: aiohttp.ClientSession) -> None:
    async with http.get(gateway.url("/v1/realtime"), headers=upgrade_headers(**auth())) as response:
        assert response.status == 400
        error = await error_of(response)
    assert error["param"] == "model"
    assert error["code"] == "missing_model"


async def test_plain_get_is_400_without_calling_azure(
    gateway: RealtimeGateway, fake: FakeAzure, http: aiohttp.ClientSession
) -> None:
    url = gateway.url(f"/v1/realtime?model={MODEL_NAME}")
    async with http.get(url, headers=auth()) as response:
        assert response.status == 400
        assert (await error_of(response))["code"] == "websocket_required"
    assert fake.handshakes == []
    assert fake.refused == 0


# --- frames -----------------------------------------------------------------------------------


async def test_text_and_binary_frames_both_ways(
    gateway: RealtimeGateway, fake: FakeAzure, http: aiohttp.ClientSession
) -> None:
    url = gateway.url(f"/v1/realtime?model={MODEL_NAME}")
    event = {"type": "input_audio_buffer.append", "audio": "AAEC", "note": "héllo ✓"}
    audio = bytes(range(256)) * 4
    large = os.urandom(5 * 1024 * 1024)  # over aiohttp's 4 MiB default, under max_body
    async with http.ws_connect(url, headers=auth(), max_msg_size=0) as ws:
        assert (await receive_event(ws))["type"] == "session.created"
        await ws.send_str(json.dumps(event))
        assert await receive_event(ws) == event
        await ws.send_bytes(audio)
        echoed = await receive(ws)
        assert (echoed.type, echoed.data) == (WSMsgType.BINARY, audio)
        await ws.send_bytes(large)
        assert (await receive(ws)).data == large
    assert fake.received == [json.dumps(event), audio, large]


async def test_client_close_code_reaches_azure(
    gateway: RealtimeGateway, fake: FakeAzure, http: aiohttp.ClientSession
) -> None:
    url = gateway.url(f"/v1/realtime?model={MODEL_NAME}")
    async with http.ws_connect(url, headers=auth()) as ws:
        await receive_event(ws)
        async with asyncio.timeout(WAIT):
            await ws.close(code=4000, message=b"user hung up")
    await wait_for(fake.closed)
    assert (fake.close_code, fake.close_reason) == (4000, "user hung up")
    await wait_for(gateway.handled.finished)


async def test_azure_close_code_reaches_client(
    gateway: RealtimeGateway, fake: FakeAzure, http: aiohttp.ClientSession
) -> None:
    url = gateway.url(f"/v1/realtime?model={MODEL_NAME}")
    async with http.ws_connect(url, headers=auth()) as ws:
        await receive_event(ws)
        await ws.send_str(json.dumps({"type": "test.close", "code": 4001, "reason": "idle"}))
        message = await receive(ws)
        assert (message.type, message.data, message.extra) == (WSMsgType.CLOSE, 4001, "idle")
        assert (await receive(ws)).type is WSMsgType.CLOSED
    await wait_for(fake.closed)
    await wait_for(gateway.handled.finished)


async def test_azure_dropping_the_connection_closes_the_client_1014(
    gateway: RealtimeGateway, fake: FakeAzure, http: aiohttp.ClientSession
) -> None:
    url = gateway.url(f"/v1/realtime?model={MODEL_NAME}")
    async with http.ws_connect(url, headers=auth()) as ws:
        await receive_event(ws)
        await ws.send_str(json.dumps({"type": "test.drop"}))
        message = await receive(ws)
        assert (message.type, message.data) == (WSMsgType.CLOSE, WSCloseCode.BAD_GATEWAY)
    await wait_for(gateway.handled.finished)


async def test_gateway_shutdown_closes_both_sides(
    gateway: RealtimeGateway, fake: FakeAzure, http: aiohttp.ClientSession
) -> None:
    url = gateway.url(f"/v1/realtime?model={MODEL_NAME}")
    async with http.ws_connect(url, headers=auth()) as ws:
        await receive_event(ws)
        async with asyncio.timeout(WAIT):
            await gateway.server.close()  # cancels the relay after its 0.5 s shutdown timeout
        await wait_for(fake.closed)
        assert fake.close_code == WSCloseCode.GOING_AWAY
        assert (await receive(ws)).type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert gateway.handled.finished.is_set()


# --- Azure refusing or unreachable ------------------------------------------------------------


async def test_azure_refusing_the_handshake_is_relayed_before_the_upgrade(
    gateway: RealtimeGateway, fake: FakeAzure, http: aiohttp.ClientSession
) -> None:
    fake.key = "another-key"
    url = gateway.url(f"/v1/realtime?model={MODEL_NAME}&api-key={KEY}")
    async with http.get(url, headers=upgrade_headers()) as response:
        assert response.status == 401
        assert "Upgrade" not in response.headers
        error = await error_of(response)
        text = await response.text()
    assert error["code"] == "invalid_api_key"
    assert "refused the realtime connection" in error["message"]
    assert KEY not in text
    assert "api-key" not in error["message"]
    assert fake.refused == 1
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await http.ws_connect(url)
    assert caught.value.status == 401


async def test_unreachable_azure_is_502(
    start_gateway: GatewayStarter, unused_tcp_port: int, http: aiohttp.ClientSession
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_ENDPOINT=f"http://127.0.0.1:{unused_tcp_port}")
    url = gateway.url(f"/v1/realtime?model={MODEL_NAME}&api-key={KEY}")
    async with http.get(url, headers=upgrade_headers()) as response:
        assert response.status == 502
        error = await error_of(response)
    assert error["code"] == "upstream_unreachable"
    assert f"http://127.0.0.1:{unused_tcp_port}" in error["message"]
    assert KEY not in error["message"]
    assert "realtime?" not in error["message"]


@pytest.fixture
async def silent_url() -> AsyncIterator[str]:
    """A server that accepts connections and never answers."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_silent_azure_is_504(
    start_gateway: GatewayStarter, silent_url: str, http: aiohttp.ClientSession
) -> None:
    gateway = await start_gateway(
        AZURE_OPENAI_ENDPOINT=silent_url, AZURE_OPENAI_FIRST_BYTE_TIMEOUT="0.3"
    )
    url = gateway.url(f"/v1/realtime?model={MODEL_NAME}")
    async with asyncio.timeout(WAIT), http.get(url, headers=upgrade_headers(**auth())) as response:
        assert response.status == 504
        assert (await error_of(response))["code"] == "upstream_timeout"


# --- the official SDK -------------------------------------------------------------------------


async def test_openai_sdk_session_round_trip(gateway: RealtimeGateway, fake: FakeAzure) -> None:
    base = str(gateway.url("/v1"))
    client = openai.AsyncOpenAI(
        base_url=base, websocket_base_url=base.replace("http", "ws", 1), api_key=KEY
    )
    async with client, asyncio.timeout(WAIT):
        async with client.realtime.connect(model=MODEL_NAME) as connection:
            created = await connection.recv()
            assert created.type == "session.created"
            await connection.session.update(session={"type": "realtime", "instructions": "Hi"})
            updated = await connection.recv()
            assert updated.type == "session.updated"
        await fake.closed.wait()
    assert fake.handshakes[0].path_qs == f"/openai/v1/realtime?model={MODEL_NAME}"
    assert json.loads(str(fake.received[0]))["type"] == "session.update"
    assert fake.close_code == WSCloseCode.OK


async def test_azure_openai_sdk_session_round_trip(
    gateway: RealtimeGateway, fake: FakeAzure
) -> None:
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=str(gateway.url("")),
        websocket_base_url=str(gateway.url("/openai")).replace("http", "ws", 1),
        api_version="2025-04-01-preview",
        api_key=KEY,
    )
    async with client, asyncio.timeout(WAIT):
        async with client.realtime.connect(model=MODEL_NAME) as connection:
            assert (await connection.recv()).type == "session.created"
        await fake.closed.wait()
    assert fake.handshakes[0].path_qs == (
        f"/openai/realtime?api-version=2025-04-01-preview&deployment={MODEL_NAME}"
    )
