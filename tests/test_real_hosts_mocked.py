"""Real Azure host names, with aioresponses standing in for the network.

The functional tests point the gateway at the emulator; these check the URLs built for real
resources (`https://{resource}.openai.azure.com`) and failures a local server cannot stage.
aioresponses mocks aiohttp's client, so these gateways send every call through it
(`AZURE_OPENAI_PROXY_UPSTREAM_CLIENT=aiohttp`); `test_h1client` covers the lean client's
TLS, host names and failures on real sockets.
"""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

from .support import Gateway, GatewayFactory, auth

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def network() -> Iterator[aioresponses]:
    # Calls to the local gateway go through; everything else is answered by the mock.
    with aioresponses(passthrough=["http://127.0.0.1"]) as mocked:
        yield mocked


AIOHTTP_CLIENT = {"AZURE_OPENAI_PROXY_UPSTREAM_CLIENT": "aiohttp"}


@pytest.fixture
async def resource_gateway(start_gateway: GatewayFactory) -> Gateway:
    return await start_gateway(
        AZURE_OPENAI_ENDPOINT="https://corp.openai.azure.com", **AIOHTTP_CLIENT
    )


async def test_triple_key_reaches_the_resource_host(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, network: aioresponses
) -> None:
    gateway = await start_gateway(**AIOHTTP_CLIENT)
    # aioresponses 0.7.9 cannot build responses for aiohttp 3.14; a refused connection is
    # enough to see what would have been sent.
    url = "https://myres.openai.azure.com/openai/deployments/dep4o/chat/completions"
    network.post(f"{url}?api-version=2024-10-21", exception=aiohttp.ClientConnectionError())
    key = "myres:gpt-4o|dep4o:k3y"
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=auth(key)) as r:
        assert r.status == 502
        assert "https://myres.openai.azure.com" in (await r.json())["error"]["message"]
    ((method, sent_url), calls) = next(iter(network.requests.items()))
    assert (method, sent_url) == ("POST", URL(f"{url}?api-version=2024-10-21"))
    assert calls[0].kwargs["headers"]["api-key"] == "k3y"


@pytest.mark.parametrize(
    "failure",
    [
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientOSError(104, "Connection reset by peer"),
        aiohttp.ClientConnectionError("https://corp.openai.azure.com/?api-key=leak"),
    ],
)
async def test_connection_failures_are_502_naming_only_the_host(
    resource_gateway: Gateway,
    http: aiohttp.ClientSession,
    network: aioresponses,
    failure: Exception,
) -> None:
    network.post(
        "https://corp.openai.azure.com/openai/deployments/gpt-4o/chat/completions"
        "?api-version=2024-10-21",
        exception=failure,
    )
    async with http.post(
        resource_gateway.url("/v1/chat/completions"), json=CHAT, headers=auth("client-key-77")
    ) as resp:
        assert resp.status == 502
        error = (await resp.json())["error"]
    assert error["code"] == "upstream_unreachable"
    assert "https://corp.openai.azure.com" in error["message"]
    assert "leak" not in error["message"]
    assert "client-key-77" not in error["message"]
