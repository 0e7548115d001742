"""Helpers the functional tests share: the running gateway, keys, headers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from azproxy.settings import Settings

ServerFactory = Callable[..., Awaitable[TestServer]]
KEY = "test-azure-key-0123456789"


@dataclass
class Gateway:
    """A running gateway: its base URL and the settings it was built with."""

    server: TestServer
    settings: Settings

    def url(self, path: str) -> URL:
        return self.server.make_url(path)


GatewayFactory = Callable[..., Awaitable[Gateway]]


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def app_of(server: TestServer) -> web.Application:
    app = server.app
    assert isinstance(app, web.Application)
    return app


async def reset_after_first_bytes(request: web.Request) -> None:
    """Kill an upstream answer mid-body: once what was written has left, reset the connection."""
    await asyncio.sleep(0.05)  # let the first bytes leave before the reset
    assert request.transport is not None
    request.transport.abort()
