"""`openai` mode: every request relayed unchanged to OPENAI_API_BASE (here, the emulator)."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from azproxy.emulator import EmulatorState

from .support import Gateway, GatewayFactory, ServerFactory, auth

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
ORIGIN = "https://ui.example"


@pytest.fixture
async def passthrough(start_gateway: GatewayFactory, azure_url: str) -> Gateway:
    return await start_gateway(AZURE_OPENAI_PROXY_MODE="openai", OPENAI_API_BASE=azure_url)


def sse_data(text: str) -> list[str]:
    """The `data:` payloads of an SSE body, in order."""
    assert text.endswith("\n\n")
    events = text.split("\n\n")[:-1]
    assert all(event.startswith("data: ") for event in events), events
    return [event.removeprefix("data: ") for event in events]


async def test_request_is_forwarded_unchanged(
    passthrough: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    raw = b'{"model":"gpt-4o",  "messages":[{"role":"user","content":"hi"}],"x_extra":[1,2]}'
    headers = {
        **auth("sk-client-key"),
        "Content-Type": "application/json",
        "OpenAI-Organization": "org-123",
        "OpenAI-Project": "proj-9",
        "X-Stainless-Lang": "python",
        "X-Custom": "kept",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
    }
    url = gateway_url = passthrough.url("/v1/chat/completions").with_query({"foo": "bar"})
    assert gateway_url.query_string == "foo=bar"
    async with http.post(url, data=raw, headers=headers) as resp:
        assert resp.status == 200
        reply = await resp.json()
    assert reply["object"] == "chat.completion"
    assert "service_tier" in reply  # the OpenAI-style answer, not an Azure one
    received = emulator.last_request
    assert received.method == "POST"
    assert received.path == "/v1/chat/completions"
    assert received.query == {"foo": "bar"}
    assert received.body == raw
    assert received.headers.getall("Authorization") == ["Bearer sk-client-key"]
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["OpenAI-Organization"] == "org-123"
    assert received.headers["OpenAI-Project"] == "proj-9"
    assert received.headers["X-Stainless-Lang"] == "python"
    assert received.headers["X-Custom"] == "kept"
    for hop in ("Keep-Alive", "TE", "Proxy-Connection", "Upgrade"):
        assert hop not in received.headers
    assert "api-key" not in received.headers


async def test_connection_header_is_not_forwarded(
    passthrough: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    headers = {**auth(), "Connection": "keep-alive"}
    async with http.post(passthrough.url("/v1/chat/completions"), json=CHAT, headers=headers) as r:
        assert r.status == 200
    assert emulator.last_request.headers.get("Connection", "").lower() != "keep-alive"


async def test_headers_named_by_connection_are_not_forwarded(
    passthrough: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    # RFC 9110 §7.6.1: what the client names in Connection is hop-by-hop too.
    headers = {**auth(), "Connection": "keep-alive, X-Hop", "X-Hop": "1", "X-End": "2"}
    async with http.post(passthrough.url("/v1/chat/completions"), json=CHAT, headers=headers) as r:
        assert r.status == 200
    received = emulator.last_request.headers
    assert received["X-End"] == "2"
    assert "X-Hop" not in received


async def test_stream_is_relayed_event_by_event(
    passthrough: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    emulator.reply = "one two three"
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    async with http.post(passthrough.url("/v1/chat/completions"), json=body, headers=auth()) as r:
        assert r.status == 200
        assert r.content_type == "text/event-stream"
        text = await r.text()
    payloads = sse_data(text)
    assert payloads[-1] == "[DONE]"
    chunks = [orjson.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert content == "one two three"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert orjson.loads(emulator.last_request.body) == body
    assert emulator.completed_streams == 1


async def test_models_are_forwarded(
    passthrough: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    async with http.get(passthrough.url("/v1/models"), headers=auth()) as resp:
        assert resp.status == 200
        listing = await resp.json()
    # The emulator's api.openai.com list, not the gateway's Azure mapping.
    assert listing["data"] == [
        {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"}
    ]
    assert emulator.last_request.method == "GET"
    assert emulator.last_request.path == "/v1/models"


async def test_upstream_401_passes_through(
    passthrough: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    emulator.keys = frozenset({"sk-right"})
    async with http.post(
        passthrough.url("/v1/chat/completions"), json=CHAT, headers=auth("sk-wrong-key-123")
    ) as resp:
        assert resp.status == 401
        error = (await resp.json())["error"]
    assert error["code"] == "invalid_api_key"
    assert error["message"].startswith("Incorrect API key provided: sk-*")
    assert "sk-wrong-key-123" not in error["message"]
    async with http.post(passthrough.url("/v1/chat/completions"), json=CHAT) as resp:
        assert resp.status == 401
        error = (await resp.json())["error"]
    assert error["message"].startswith("You didn't provide an API key.")
    assert len(emulator.requests) == 2


async def test_unknown_path_is_forwarded(
    passthrough: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    async with http.delete(passthrough.url("/v1/files/file-1"), headers=auth()) as resp:
        assert resp.status == 404
        await resp.read()
    assert emulator.last_request.method == "DELETE"
    assert emulator.last_request.path == "/v1/files/file-1"


async def test_preflight_is_answered_locally(
    passthrough: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    headers = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
    }
    async with http.options(passthrough.url("/v1/chat/completions"), headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] in (ORIGIN, "*")
        allowed = {
            h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")
        }
    assert allowed >= {"authorization", "content-type", "x-stainless-os"}
    assert emulator.requests == []


async def test_relayed_response_carries_cors_headers(
    passthrough: Gateway, http: aiohttp.ClientSession
) -> None:
    headers = {**auth(), "Origin": ORIGIN}
    async with http.post(passthrough.url("/v1/chat/completions"), json=CHAT, headers=headers) as r:
        assert r.status == 200
        assert r.headers["Access-Control-Allow-Origin"] in (ORIGIN, "*")
        assert "x-request-id" in r.headers["Access-Control-Expose-Headers"].lower()
        await r.read()


async def _openai_with_cors(request: web.Request) -> web.Response:
    # api.openai.com answers browsers itself, so its responses carry CORS headers.
    return web.json_response(
        {"object": "list", "data": []},
        headers={
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Expose-Headers": "x-request-id",
            "x-request-id": "req_1",
        },
    )


async def test_upstream_cors_headers_do_not_break_the_response(
    start_gateway: GatewayFactory, aiohttp_server: ServerFactory, http: aiohttp.ClientSession
) -> None:
    app = web.Application()
    app.router.add_get("/v1/models", _openai_with_cors)
    upstream: TestServer = await aiohttp_server(app)
    gateway = await start_gateway(
        AZURE_OPENAI_PROXY_MODE="openai", OPENAI_API_BASE=str(upstream.make_url("")).rstrip("/")
    )
    # aiohttp-cors asserts no Access-Control-* is set before it adds its own: relaying the
    # upstream's used to drop the connection.
    headers = {**auth(), "Origin": ORIGIN}
    async with http.get(gateway.url("/v1/models"), headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers.getall("Access-Control-Allow-Origin") in ([ORIGIN], ["*"])
        assert await resp.json() == {"object": "list", "data": []}
    async with http.get(gateway.url("/v1/models"), headers=auth()) as resp:
        assert resp.status == 200
        assert resp.headers.getall("Access-Control-Allow-Origin") == ["*"]
        await resp.read()


PAYLOAD = {"object": "list", "data": [{"id": "m" * 2000, "object": "model"}]}


async def _openai_compressing(request: web.Request) -> web.Response:
    # api.openai.com compresses JSON for a client that accepts it.
    response = web.json_response(PAYLOAD)
    response.enable_compression()
    return response


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_upstream_response_is_relayed_intact(
    start_gateway: GatewayFactory,
    aiohttp_server: ServerFactory,
    http: aiohttp.ClientSession,
    encoding: str,
) -> None:
    app = web.Application()
    app.router.add_get("/v1/models", _openai_compressing)
    upstream: TestServer = await aiohttp_server(app)
    gateway = await start_gateway(
        AZURE_OPENAI_PROXY_MODE="openai", OPENAI_API_BASE=str(upstream.make_url("")).rstrip("/")
    )
    headers = {**auth(), "Accept-Encoding": encoding}
    async with http.get(gateway.url("/v1/models"), headers=headers) as resp:
        assert resp.status == 200
        assert await resp.json() == PAYLOAD


async def test_uncompressed_upstream_response_when_client_asks_identity(
    start_gateway: GatewayFactory, aiohttp_server: ServerFactory, http: aiohttp.ClientSession
) -> None:
    app = web.Application()
    app.router.add_get("/v1/models", _openai_compressing)
    upstream: TestServer = await aiohttp_server(app)
    gateway = await start_gateway(
        AZURE_OPENAI_PROXY_MODE="openai", OPENAI_API_BASE=str(upstream.make_url("")).rstrip("/")
    )
    headers = {**auth(), "Accept-Encoding": "identity"}
    async with http.get(gateway.url("/v1/models"), headers=headers) as resp:
        assert resp.status == 200
        assert await resp.json() == PAYLOAD
