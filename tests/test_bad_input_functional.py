"""Bad input: an OpenAI-shaped error with the right status, nothing sent upstream, and the
gateway still serving the next request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from azproxy.emulator import EmulatorState
from azproxy.settings import ConfigError

from .support import KEY, Gateway, GatewayFactory, auth

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
JSON_HEADERS = {**auth(), "Content-Type": "application/json"}


async def openai_error(resp: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    """The `error` object of `resp`, after checking its status and exact OpenAI shape."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["type"], str)
    return error


async def assert_still_serving(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=auth()) as resp:
        assert resp.status == 200
        assert (await resp.json())["object"] == "chat.completion"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b'{"model": "gpt-4o",', id="truncated"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[]", id="empty-array"),
        pytest.param(orjson.dumps([CHAT]), id="array"),
        pytest.param(b'"gpt-4o"', id="string"),
        pytest.param(b"42", id="number"),
        pytest.param(b"null", id="null"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
    ],
)
async def test_body_not_a_json_object_is_400(
    gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState, body: bytes
) -> None:
    url = gateway.url("/v1/chat/completions")
    async with http.post(url, data=body, headers=JSON_HEADERS) as resp:
        error = await openai_error(resp, 400)
    assert error["type"] == "invalid_request_error"
    assert emulator.requests == []
    await assert_still_serving(gateway, http)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"messages": []}, id="missing"),
        pytest.param({"model": 4, "messages": []}, id="number"),
        pytest.param({"model": None, "messages": []}, id="null"),
        pytest.param({"model": ["gpt-4o"], "messages": []}, id="list"),
        pytest.param({"model": {"id": "gpt-4o"}, "messages": []}, id="object"),
        pytest.param({"model": "", "messages": []}, id="empty"),
        pytest.param({"model": "   ", "messages": []}, id="blank"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings", "/completions"])
async def test_bad_model_is_400_naming_the_param(
    gateway: Gateway,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
    payload: dict[str, Any],
    path: str,
) -> None:
    async with http.post(gateway.url(path), json=payload, headers=auth()) as resp:
        error = await openai_error(resp, 400)
    assert error["param"] == "model"
    assert error["type"] == "invalid_request_error"
    assert emulator.requests == []
    await assert_still_serving(gateway, http)


async def test_body_over_max_body_is_413(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_PROXY_MAX_BODY="1000")
    big = orjson.dumps({**CHAT, "padding": "x" * 5000})
    assert len(big) > 5000
    url = gateway.url("/v1/chat/completions")
    async with http.post(url, data=big, headers=JSON_HEADERS) as resp:
        error = await openai_error(resp, 413)
    assert "1000" in error["message"]
    assert emulator.requests == []
    await assert_still_serving(gateway, http)


async def test_chunked_body_over_max_body_is_413(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    # Without Content-Length the limit must still hold, counted as the body arrives.
    gateway = await start_gateway(AZURE_OPENAI_PROXY_MAX_BODY="1000")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 500

    url = gateway.url("/v1/chat/completions")
    async with http.post(url, data=chunks(), headers=JSON_HEADERS) as resp:
        await openai_error(resp, 413)
    assert emulator.requests == []
    await assert_still_serving(gateway, http)


async def test_body_at_max_body_is_accepted(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_PROXY_MAX_BODY="1000")
    body = orjson.dumps(CHAT)
    body = body[:-1] + b" " * (1000 - len(body)) + b"}"
    assert len(body) == 1000
    url = gateway.url("/v1/chat/completions")
    async with http.post(url, data=body, headers=JSON_HEADERS) as resp:
        assert resp.status == 200
    assert emulator.last_request.body == body


async def test_header_too_large_is_rejected(
    gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    headers = {**auth(), "X-Big": "x" * 20_000}
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=headers) as resp:
        assert resp.status in (400, 431)
        await resp.read()
    assert emulator.requests == []
    await assert_still_serving(gateway, http)


async def test_header_too_large_is_openai_shaped_and_quotes_nothing(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    # aiohttp's parser rejects it before any middleware; its own page quoted the line.
    headers = {**auth(), "X-Big": "SENTINEL" + "x" * 20_000}
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=headers) as resp:
        assert resp.status in (400, 431)
        text = await resp.text()
        error = await openai_error(resp, resp.status)
    assert "SENTINEL" not in text
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "key",
    ["res:dep:", "res::k", "evil.com:dep:k", "res:a,b:k", "res:dep:k:v:extra", "only:two"],
)
async def test_malformed_triple_key_is_401(
    gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState, key: str
) -> None:
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=auth(key)) as r:
        error = await openai_error(r, 401)
    assert error["code"] == "invalid_api_key"
    assert key not in error["message"]
    assert emulator.requests == []
    await assert_still_serving(gateway, http)


async def test_missing_key_is_401(
    gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
        async with http.post(
            gateway.url("/v1/chat/completions"), json=CHAT, headers=headers
        ) as resp:
            error = await openai_error(resp, 401)
        assert error["code"] == "missing_api_key"
    assert emulator.requests == []
    await assert_still_serving(gateway, http)


async def test_unreachable_upstream_is_502_naming_it_without_the_key(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_ENDPOINT="http://127.0.0.1:1")
    for body in (CHAT, {**CHAT, "stream": True}):
        async with http.post(
            gateway.url("/v1/chat/completions"), json=body, headers=auth()
        ) as resp:
            error = await openai_error(resp, 502)
            raw_headers = str(resp.raw_headers)
        assert "127.0.0.1:1" in error["message"]
        assert KEY not in error["message"]
        assert KEY not in raw_headers
        assert error["code"] == "upstream_unreachable"


async def test_unreachable_upstream_502_hides_endpoint_credentials(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    try:
        gateway = await start_gateway(AZURE_OPENAI_ENDPOINT="http://user:PASSW0RD@127.0.0.1:1")
    except ConfigError:
        return  # refusing such an endpoint at start-up is a fix too
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=auth()) as resp:
        error = await openai_error(resp, 502)
    assert "127.0.0.1:1" in error["message"]
    assert "PASSW0RD" not in error["message"]
