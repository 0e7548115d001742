"""The SSE relay: chunk by chunk, byte for byte, and every way a stream can end."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from azproxy.emulator import EmulatorState, Fault

from .support import Gateway, GatewayFactory, ServerFactory, auth

STREAM = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


async def read_event(content: aiohttp.StreamReader) -> bytes:
    """One SSE event (up to and including its blank line), as the client receives it."""
    event = b""
    while not event.endswith(b"\n\n"):
        line = await content.readline()
        if not line:
            break
        event += line
    return event


async def all_events(content: aiohttp.StreamReader) -> list[bytes]:
    events = []
    while event := await read_event(content):
        events.append(event)
    return events


def payloads(events: list[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(e.removeprefix(b"data: ")) for e in events if e != b"data: [DONE]\n\n"]


@pytest.fixture
async def raw_gateway(start_gateway: GatewayFactory) -> Gateway:
    """A gateway relaying Azure's stream as is (no normaliser)."""
    return await start_gateway(AZURE_OPENAI_STREAM_MODE="passthrough")


async def test_events_reach_client_before_upstream_finishes(
    raw_gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    release = asyncio.Event()
    emulator.add_fault(Fault(kind="hold", after_chunks=2, release=release))
    async with http.post(raw_gateway.url("/v1/chat/completions"), json=STREAM, headers=auth()) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        assert r.headers["Cache-Control"] == "no-cache"
        assert r.headers["X-Accel-Buffering"] == "no"
        assert "Content-Encoding" not in r.headers
        async with asyncio.timeout(5):
            first = payloads([await read_event(r.content), await read_event(r.content)])
        # The emulator is still holding the rest: these two came through on their own.
        assert emulator.completed_streams == 0
        release.set()
        rest = await all_events(r.content)
    assert first[0]["choices"] == []
    assert "prompt_filter_results" in first[0]
    assert first[1]["choices"][0]["delta"]["role"] == "assistant"
    assert rest[-1] == b"data: [DONE]\n\n"
    text = "".join(
        c["choices"][0]["delta"].get("content", "") for c in payloads(rest) if c["choices"]
    )
    assert "emulator" in text
    assert emulator.completed_streams == 1


async def test_usage_event_is_relayed(
    gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    body = {**STREAM, "stream_options": {"include_usage": True}}
    async with http.post(gateway.url("/v1/chat/completions"), json=body, headers=auth()) as r:
        events = payloads(await all_events(r.content))
    assert events[-1]["choices"] == []
    assert events[-1]["usage"]["total_tokens"] > 0
    assert orjson.loads(emulator.last_request.body)["stream_options"] == {"include_usage": True}


@dataclass
class RawUpstream:
    """An upstream that writes `pieces` exactly as given, one write each."""

    url: str
    pieces: list[bytes] = field(default_factory=list)


@pytest.fixture
async def raw_upstream(aiohttp_server: ServerFactory) -> RawUpstream:
    upstream = RawUpstream(url="")

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in upstream.pieces:
            await response.write(piece)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/openai/deployments/{d}/chat/completions", stream)
    server = await aiohttp_server(app)
    upstream.url = str(server.make_url("")).rstrip("/")
    return upstream


async def test_relay_is_byte_exact_with_huge_lines_and_completes_the_last_event(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, raw_upstream: RawUpstream
) -> None:
    huge = b'data: {"x":"' + b"a" * 400_000 + b'"}\n\n'
    # Split mid-line, mid-event, and end without the blank line older Azure versions omitted.
    raw_upstream.pieces += [
        b'data: {"a":',
        b'1}\n\ndata: {"b"',
        b":2}\n",
        b"\n",
        huge,
        b"data: [DONE]",
    ]
    gateway = await start_gateway(AZURE_OPENAI_ENDPOINT=raw_upstream.url)
    async with http.post(gateway.url("/v1/chat/completions"), json=STREAM, headers=auth()) as r:
        received = await r.read()
    assert received == b"".join(raw_upstream.pieces) + b"\n\n"


async def test_client_disconnect_cancels_upstream(
    gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    emulator.add_fault(Fault(kind="stall", after_chunks=2))
    async with http.post(gateway.url("/v1/chat/completions"), json=STREAM, headers=auth()) as r:
        async with asyncio.timeout(5):
            await read_event(r.content)
        r.close()  # the browser tab goes away
    await asyncio.wait_for(emulator.aborted.wait(), 5)
    assert emulator.aborted_streams == 1
    async with http.post(gateway.url("/v1/chat/completions"), json=STREAM, headers=auth()) as r:
        assert (await all_events(r.content))[-1] == b"data: [DONE]\n\n"


async def test_upstream_reset_mid_stream_ends_with_error_event(
    raw_gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    emulator.add_fault(Fault(kind="reset", after_chunks=3))
    async with http.post(raw_gateway.url("/v1/chat/completions"), json=STREAM, headers=auth()) as r:
        assert r.status == 200
        async with asyncio.timeout(10):
            events = await all_events(r.content)
    assert len(events) == 4
    error = orjson.loads(events[-1].removeprefix(b"data: "))["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "upstream_unreachable"
    assert "mid-stream" in error["message"]


async def test_idle_timeout_ends_stream_with_error_event(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    gateway = await start_gateway(
        AZURE_OPENAI_STREAM_IDLE_TIMEOUT="0.3", AZURE_OPENAI_STREAM_MODE="passthrough"
    )
    emulator.add_fault(Fault(kind="stall", after_chunks=2))
    async with http.post(gateway.url("/v1/chat/completions"), json=STREAM, headers=auth()) as r:
        async with asyncio.timeout(10):
            events = await all_events(r.content)
    assert len(events) == 3
    error = orjson.loads(events[-1].removeprefix(b"data: "))["error"]
    assert error["code"] == "upstream_timeout"
    await asyncio.wait_for(emulator.aborted.wait(), 5)  # the stalled upstream was closed


async def test_first_byte_timeout_is_504(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_FIRST_BYTE_TIMEOUT="0.3")
    emulator.add_fault(Fault(kind="slow_first_byte", delay=30))
    async with asyncio.timeout(10):
        async with http.post(gateway.url("/v1/chat/completions"), json=STREAM, headers=auth()) as r:
            assert r.status == 504
            error = (await r.json())["error"]
    assert error["code"] == "upstream_timeout"
    assert "127.0.0.1" in error["message"]


async def test_slow_first_byte_within_the_limit_is_served(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    gateway = await start_gateway(
        AZURE_OPENAI_FIRST_BYTE_TIMEOUT="5", AZURE_OPENAI_STREAM_IDLE_TIMEOUT="0.05"
    )
    emulator.add_fault(Fault(kind="slow_first_byte", delay=0.2))
    async with http.post(gateway.url("/v1/chat/completions"), json=STREAM, headers=auth()) as r:
        assert r.status == 200
        assert (await all_events(r.content))[-1] == b"data: [DONE]\n\n"


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A port whose accept queue is full, so a new connection hangs in SYN-SENT."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(8):  # fill the backlog; further SYNs are dropped by the kernel
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    host, port = listener.getsockname()
    yield f"http://{host}:{port}"
    for sock in [listener, *fillers]:
        sock.close()


async def test_connect_timeout_is_504(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, blackhole: str
) -> None:
    gateway = await start_gateway(
        AZURE_OPENAI_ENDPOINT=blackhole, AZURE_OPENAI_CONNECT_TIMEOUT="0.3"
    )
    async with asyncio.timeout(10):
        async with http.post(gateway.url("/v1/chat/completions"), json=STREAM, headers=auth()) as r:
            assert r.status == 504
            error = (await r.json())["error"]
    assert error["code"] == "upstream_timeout"


async def test_rate_limit_passes_through_with_retry_headers(
    gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    emulator.add_fault(Fault(kind="status", status=429, retry_after=7))
    async with http.post(gateway.url("/v1/chat/completions"), json=STREAM, headers=auth()) as r:
        assert r.status == 429
        assert r.headers["retry-after"] == "7"
        assert r.headers["retry-after-ms"] == "7000"
        assert r.headers["x-ratelimit-remaining-requests"] == "0"
        body = await r.json()
    assert body["error"]["code"] == "429"
    assert "retry after 7 seconds" in body["error"]["message"]


@pytest.mark.parametrize(("retry_after", "should_retry"), [(7, None), (60, None), (86400, "false")])
async def test_long_rate_limit_waits_tell_sdks_not_to_retry(
    gateway: Gateway,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
    retry_after: int,
    should_retry: str | None,
) -> None:
    emulator.add_fault(Fault(kind="status", status=429, retry_after=retry_after))
    async with http.post(gateway.url("/v1/chat/completions"), json=STREAM, headers=auth()) as r:
        assert r.status == 429
        assert r.headers["retry-after"] == str(retry_after)
        assert r.headers.get("x-should-retry") == should_retry


async def test_normaliser_makes_azure_streams_look_like_openai(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_MODEL_MAPPER="gpt-4o=prod-4o")
    body = {**STREAM, "stream_options": {"include_usage": True}}
    async with http.post(gateway.url("/v1/chat/completions"), json=body, headers=auth()) as r:
        events = await all_events(r.content)
    assert events[-1] == b"data: [DONE]\n\n"
    chunks = payloads(events)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all(c["model"] == "gpt-4o" for c in chunks)  # the client's name, not Azure's
    *content, usage = chunks
    assert all(c["choices"] for c in content)  # no prompt-filter event first
    assert content[0]["choices"][0]["delta"]["role"] == "assistant"
    assert usage["choices"] == []
    assert usage["usage"]["total_tokens"] > 0
    assert emulator.last_request.path == "/openai/deployments/prod-4o/chat/completions"


async def test_non_streaming_bodies_name_the_client_model(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    body = {**STREAM, "stream": False}
    async with http.post(gateway.url("/v1/chat/completions"), json=body, headers=auth()) as r:
        reply = await r.json()
    assert reply["model"] == "gpt-4o"
    assert reply["choices"][0]["message"]["role"] == "assistant"


async def test_upstream_cookies_are_not_shared_between_clients(
    aiohttp_server: ServerFactory, start_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        response = web.json_response({"object": "chat.completion"})
        response.set_cookie("affinity", "client-a-session")
        return response

    app = web.Application()
    app.router.add_post("/openai/deployments/{d}/chat/completions", handler)
    server = await aiohttp_server(app)
    # A host name, not 127.0.0.1: cookie jars ignore cookies from IP addresses.
    gateway = await start_gateway(AZURE_OPENAI_ENDPOINT=f"http://localhost:{server.port}")
    for key in ("client-a", "client-b"):
        body = {**STREAM, "stream": False}
        async with http.post(
            gateway.url("/v1/chat/completions"), json=body, headers=auth(key)
        ) as r:
            assert r.status == 200
    assert seen == [None, None]
