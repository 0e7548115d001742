"""A JSON answer whose body arrives with its head, later, never, or cut off: on both clients."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest
from aiohttp import web

from .support import GatewayFactory, ServerFactory, auth

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-2024-11-20",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}}],
    }
)
CLIENTS = pytest.mark.parametrize("client", ["lean", "aiohttp"])


def json_upstream(behaviour: str, never: asyncio.Event) -> web.Application:
    """An Azure whose chat answer comes whole, in two parts, stalls halfway, or is cut."""

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        if behaviour == "whole":  # head and body in one write
            return web.Response(body=ANSWER, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(ANSWER)
        await response.prepare(request)
        await response.write(ANSWER[:20])
        if behaviour == "later":
            await asyncio.sleep(0.05)  # the rest in a later read; any delay gives the same answer
            await response.write(ANSWER[20:])
        elif behaviour == "stall":
            await never.wait()  # never set: the gateway's idle timeout must end it
        else:  # "cut"
            await asyncio.sleep(0.05)  # let the first bytes leave before the reset
            assert request.transport is not None
            request.transport.abort()
        return response

    app = web.Application()
    app.router.add_post("/{tail:.*}", chat)
    return app


async def gateway_for(
    behaviour: str, client: str, start_gateway: GatewayFactory, aiohttp_server: ServerFactory
) -> str:
    server = await aiohttp_server(json_upstream(behaviour, asyncio.Event()))
    gateway = await start_gateway(
        AZURE_OPENAI_ENDPOINT=str(server.make_url("")).rstrip("/"),
        AZURE_OPENAI_PROXY_UPSTREAM_CLIENT=client,
        AZURE_OPENAI_STREAM_IDLE_TIMEOUT="0.3",
    )
    return str(gateway.url("/v1/chat/completions"))


@CLIENTS
async def test_a_body_that_came_with_its_head_is_relayed(
    client: str,
    start_gateway: GatewayFactory,
    aiohttp_server: ServerFactory,
    http: aiohttp.ClientSession,
) -> None:
    url = await gateway_for("whole", client, start_gateway, aiohttp_server)
    async with http.post(url, json=CHAT, headers=auth()) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json"
        body = await resp.json()
    assert body["model"] == "gpt-4o"
    assert body["choices"][0]["message"]["content"] == "hello"


@CLIENTS
async def test_a_body_that_comes_after_its_head_is_awaited(
    client: str,
    start_gateway: GatewayFactory,
    aiohttp_server: ServerFactory,
    http: aiohttp.ClientSession,
) -> None:
    url = await gateway_for("later", client, start_gateway, aiohttp_server)
    async with http.post(url, json=CHAT, headers=auth()) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["choices"][0]["message"]["content"] == "hello"


@CLIENTS
async def test_a_body_that_stops_halfway_is_a_504_after_the_idle_timeout(
    client: str,
    start_gateway: GatewayFactory,
    aiohttp_server: ServerFactory,
    http: aiohttp.ClientSession,
) -> None:
    url = await gateway_for("stall", client, start_gateway, aiohttp_server)
    async with asyncio.timeout(10), http.post(url, json=CHAT, headers=auth()) as resp:
        assert resp.status == 504
        error = (await resp.json())["error"]
    assert error["code"] == "upstream_timeout"
    assert "stopped sending its response" in error["message"]


@CLIENTS
async def test_a_body_cut_off_halfway_is_a_502(
    client: str,
    start_gateway: GatewayFactory,
    aiohttp_server: ServerFactory,
    http: aiohttp.ClientSession,
) -> None:
    url = await gateway_for("cut", client, start_gateway, aiohttp_server)
    async with asyncio.timeout(10), http.post(url, json=CHAT, headers=auth()) as resp:
        assert resp.status == 502
        error = (await resp.json())["error"]
    assert error["code"] == "upstream_unreachable"
    assert "failed while sending its response" in error["message"]
