"""CORS for browser UIs, through aiohttp-cors, on every route including the catch-all."""

from __future__ import annotations

import aiohttp_cors
from aiohttp import web

from .keys import SETTINGS

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
    cors = aiohttp_cors.setup(app, defaults={origin: options for origin in origins})
    for resource in list(app.router.resources()):
        cors.add(resource)
    app.on_response_prepare.append(_any_origin if origins == ("*",) else _listed_origins)


async def _listed_origins(request: web.Request, response: web.StreamResponse) -> None:
    # aiohttp-cors echoes the request's Origin; a shared cache must not reuse the answer
    # for another origin.
    if "Origin" in request.headers:
        response.headers.add("Vary", "Origin")


async def _any_origin(request: web.Request, response: web.StreamResponse) -> None:
    if "Origin" in request.headers:
        response.headers.add("Vary", "Origin")
    else:
        # aiohttp-cors answers only requests that carry Origin; the original proxies sent
        # `Access-Control-Allow-Origin: *` on every response, and some embedded UIs rely on it.
        response.headers["Access-Control-Allow-Origin"] = "*"
