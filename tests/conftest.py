"""Shared fixtures: the emulator as Azure, the gateway in front of it, both on real sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import pytest
import uvloop
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner

from azproxy.accesslog import AccessLogger
from azproxy.app import create_app
from azproxy.emulator import EmulatorState, create_emulator_app
from azproxy.runner import GatewayRunner
from azproxy.settings import load_settings

from .support import Gateway, GatewayFactory, ServerFactory

LOOP_FACTORIES: Mapping[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """asyncio's own loop; a module that sets `LOOPS` runs on each loop it names.

    `python -m azproxy` runs on uvloop, whose transports are not asyncio's classes and differ
    in timing, so code on bare transports and protocols is tested on both.
    """
    module = getattr(item, "module", None)
    names = getattr(module, "LOOPS", ("asyncio",))
    return {name: LOOP_FACTORIES[name] for name in names}


@pytest.fixture
def emulator() -> EmulatorState:
    """The fake Azure's state: what it received, which faults to play."""
    return EmulatorState()


@pytest.fixture
async def azure(aiohttp_server: ServerFactory, emulator: EmulatorState) -> TestServer:
    return await aiohttp_server(create_emulator_app(emulator))


@pytest.fixture
def azure_url(azure: TestServer) -> str:
    return str(azure.make_url("")).rstrip("/")


class GatewayTestServer(TestServer):
    """The test server, on the runner production uses."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        assert isinstance(self.app, web.Application)
        return GatewayRunner(self.app, **kwargs)


@pytest.fixture
async def start_gateway(azure_url: str) -> AsyncIterator[GatewayFactory]:
    """Start a gateway configured by env-style variables, in front of the emulator by default."""
    servers: list[TestServer] = []

    async def start(**env: str) -> Gateway:
        variables = {"AZURE_OPENAI_ENDPOINT": azure_url, **env}
        settings = load_settings({k: v for k, v in variables.items() if v})
        server = GatewayTestServer(create_app(settings))
        servers.append(server)
        await server.start_server(
            access_log_class=AccessLogger, access_log=logging.getLogger("azproxy.access")
        )
        return Gateway(server, settings)

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> Gateway:
    return await start_gateway()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client, as a script or browser UI would use."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session
