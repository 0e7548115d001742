"""CORS for browser UIs, through aiohttp-cors, on every route including the catch-all."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp_cors
from aiohttp import web

from .keys import SETTINGS

Hook = Callable[[web.Request, web.StreamResponse], Awaitable[object]]

# Headers a browser UI may read from our responses.
EXPOSED_HEADERS = (
    "x-request-id",
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "apim-request-id",
    "x-ms-region",
)


def setup_cors(app: web.Application) -> None:
    """Enable CORS on every resource already registered on `app`."""
    origins = app[SETTINGS].cors_origins
    # allow_headers="*" echoes whatever the browser asks for: Authorization, api-key,
    # OpenAI-Organization/Project and the open-ended X-Stainless-* family of the SDKs.
    options = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
        allow_credentials=False,
        expose_headers=EXPOSED_HEADERS,
        allow_headers="*",
        allow_methods="*",
        max_age=86400,
    )
    hooks_before = list(app.on_response_prepare)
    cors = aiohttp_cors.setup(app, defaults={origin: options for origin in origins})
    for resource in list(app.router.resources()):
        cors.add(resource)
    # aiohttp-cors's response hook looks the route up before it looks for an Origin, on every
    # response; SDKs and servers send none. It now runs only for requests that carry one.
    cors_hooks = [hook for hook in app.on_response_prepare if hook not in hooks_before]
    for hook in cors_hooks:
        app.on_response_prepare.remove(hook)
    app.on_response_prepare.append(_ResponseHook(cors_hooks, any_origin=origins == ("*",)))


class _ResponseHook:
    """CORS headers on every response: aiohttp-cors's for browsers, ours for the rest."""

    def __init__(self, cors_hooks: list[Hook], *, any_origin: bool) -> None:
        self._cors_hooks = cors_hooks
        self._any_origin = any_origin

    async def __call__(self, request: web.Request, response: web.StreamResponse) -> None:
        if "Origin" in request.headers:
            for hook in self._cors_hooks:
                await hook(request, response)
            # aiohttp-cors echoes the request's Origin; a shared cache must not reuse the
            # answer for another origin.
            response.headers.add("Vary", "Origin")
        elif self._any_origin:
            # aiohttp-cors answers only requests that carry Origin; the original proxies sent
            # `Access-Control-Allow-Origin: *` on every response, and some embedded UIs rely
            # on it.
            response.headers["Access-Control-Allow-Origin"] = "*"
