"""A JSON answer whose body arrives with its head, later, never, or cut off: on both clients."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest
from aiohttp import web

from .support import GatewayFactory, ServerFactory, auth, reset_after_first_bytes

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


def json_upstream(behaviour: str) -> web.Application:
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
            await asyncio.Event().wait()  # never set: the gateway's idle timeout must end it
        else:  # "cut"
            await reset_after_first_bytes(request)
        return response

    app = web.Application()
    app.router.add_post("/{tail:.*}", chat)
    return app


async def gateway_for(
    behaviour: str, client: str, start_gateway: GatewayFactory, aiohttp_server: ServerFactory
) -> str:
    server = await aiohttp_server(json_upstream(behaviour))
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
@pytest.mark.parametrize(
    ("behaviour", "status", "code", "says"),
    [
        ("stall", 504, "upstream_timeout", "stopped sending its response"),
        ("cut", 502, "upstream_unreachable", "failed while sending its response"),
    ],
    ids=["stops-halfway-504-after-the-idle-timeout", "cut-off-halfway-502"],
)
async def test_a_body_that_does_not_arrive_whole_is_an_error(
    client: str,
    behaviour: str,
    status: int,
    code: str,
    says: str,
    start_gateway: GatewayFactory,
    aiohttp_server: ServerFactory,
    http: aiohttp.ClientSession,
) -> None:
    url = await gateway_for(behaviour, client, start_gateway, aiohttp_server)
    async with asyncio.timeout(10), http.post(url, json=CHAT, headers=auth()) as resp:
        assert resp.status == status
        error = (await resp.json())["error"]
    assert error["code"] == code
    assert says in error["message"]
