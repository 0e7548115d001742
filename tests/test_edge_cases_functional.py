"""Edge cases found in review: truncated downloads, triple-key versions, gzip, parse errors."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from azproxy.emulator import EmulatorState

from .support import Gateway, GatewayFactory, ServerFactory, auth, reset_after_first_bytes


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"x" * piece


def _binary_upstream_that_dies(chunked: bool) -> web.Application:
    """An upstream that sends 1,000 bytes of audio, then resets the connection."""

    async def speech(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = 100_000
        await response.prepare(request)
        await response.write(b"\x00" * 1000)
        await reset_after_first_bytes(request)
        return response

    app = web.Application()
    app.router.add_post("/{tail:.*}", speech)
    return app


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_speech_cut_mid_body_is_reported_as_truncated(
    start_gateway: GatewayFactory,
    aiohttp_server: ServerFactory,
    http: aiohttp.ClientSession,
    chunked: bool,
) -> None:
    """An upstream that dies mid-audio ends the client's download with an error, fast: no
    wait for promised bytes, no clean last chunk that makes a cut file look complete."""
    server = await aiohttp_server(_binary_upstream_that_dies(chunked))
    gateway = await start_gateway(AZURE_OPENAI_ENDPOINT=str(server.make_url("")).rstrip("/"))
    url = gateway.url("/v1/audio/speech")
    payload = {"model": "tts-1", "input": "hi", "voice": "alloy"}
    async with http.post(url, json=payload, headers=auth()) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            async with asyncio.timeout(5):
                await resp.read()


async def test_triple_key_v1_keeps_legacy_completions_classic(
    start_gateway: GatewayFactory,
    azure_url: str,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
) -> None:
    """README: legacy completions stay on a dated classic route even when the version is v1."""
    gateway = await start_gateway(AZURE_OPENAI_RESOURCE_ENDPOINT=f"{azure_url}/{{resource}}")
    key = "myres:dep:secret-123:v1"
    body = {"model": "gpt-35-turbo-instruct", "prompt": "hi"}
    async with http.post(gateway.url("/v1/completions"), json=body, headers=auth(key)) as resp:
        await resp.read()
    received = emulator.last_request
    assert received.path == "/myres/openai/deployments/dep/completions", received.path
    assert received.query.get("api-version", "v1") != "v1"


async def test_triple_key_v1_keeps_batches_classic(
    start_gateway: GatewayFactory,
    azure_url: str,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
) -> None:
    """README: batches stay classic (`/openai/batches?api-version=V`) even on v1."""
    gateway = await start_gateway(AZURE_OPENAI_RESOURCE_ENDPOINT=f"{azure_url}/{{resource}}")
    async with http.get(gateway.url("/v1/batches"), headers=auth("myres:dep:k:v1")) as resp:
        await resp.read()
    received = emulator.last_request
    assert received.path == "/myres/openai/batches", received.path
    assert "api-version" in received.query


async def test_unparsable_request_error_carries_cors_headers(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    """README: every response, errors included, carries CORS headers; the 431 has none, so a
    browser UI sees an opaque network error instead of the OpenAI-shaped 431."""
    headers = {
        "Origin": "https://ui.example",
        "Authorization": "Bearer " + "k" * 9000,
    }
    async with http.get(gateway.url("/v1/models"), headers=headers) as resp:
        assert resp.status == 431
        assert resp.headers.get("Access-Control-Allow-Origin") in ("*", "https://ui.example")


async def test_gzip_request_body_reaches_azure_decodable(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    """aiohttp's server inflates a `Content-Encoding: gzip` body, but the gateway still sends
    `Content-Encoding: gzip` with the now plain bytes, so the upstream cannot decode them."""
    raw = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    headers = {**auth(), "Content-Type": "application/json", "Content-Encoding": "gzip"}
    url = gateway.url("/v1/chat/completions")
    async with http.post(url, data=gzip.compress(raw), headers=headers) as resp:
        body = await resp.read()
        assert resp.status == 200, (resp.status, body[:200])


async def test_undecodable_gzip_body_is_400_not_500(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    """A body that is not the gzip it claims to be is the client's error (400), not a 500."""
    headers = {**auth(), "Content-Type": "application/json", "Content-Encoding": "gzip"}
    url = gateway.url("/v1/chat/completions")
    async with http.post(url, data=b"this is not gzip", headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 400, (resp.status, body)
        assert body["error"]["type"] == "invalid_request_error"
