"""The emulator application: routes in one place, request recording, Azure's response headers."""

from __future__ import annotations

import uuid

from aiohttp import web
from aiohttp.log import access_logger
from aiohttp.typedefs import Handler
from yarl import URL

from .handlers import azure_operation, not_found, openai_chat, openai_models
from .state import EMULATOR_STATE, EmulatorState, RecordedRequest

# APIM front doors put their own prefix before /openai/, so any prefix is accepted.
AZURE_OPERATION = (
    "/{prefix:(?:.*/)?}openai/deployments/{deployment}/"
    "{operation:chat/completions|completions|embeddings}"
)
REMAINING_REQUESTS = "99"
REMAINING_TOKENS = "149000"


def _add_routes(app: web.Application) -> None:
    app.router.add_post(AZURE_OPERATION, azure_operation)
    app.router.add_post("/v1/chat/completions", openai_chat)
    app.router.add_get("/v1/models", openai_models)
    # Last: anything else, including a known path with the wrong method, is Azure's 404.
    app.router.add_route("*", "/{tail:.*}", not_found)


@web.middleware
async def record_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record every request, valid or not, before any check can reject it."""
    request.app[EMULATOR_STATE].requests.append(
        RecordedRequest(
            method=request.method,
            path=request.rel_url.raw_path,
            query=dict(request.query.items()),  # from pairs, so the last value wins
            headers=request.headers,
            body=await request.read(),
        )
    )
    return await handler(request)


async def _stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    # setdefault: a handler's own value (x-ratelimit-remaining-requests: 0 on a 429) wins.
    headers = response.headers
    request_id = str(uuid.uuid4())
    if request.path.startswith("/v1/"):
        headers.setdefault("x-request-id", request_id)
        headers.setdefault("openai-version", "2020-10-01")
        return
    headers.setdefault("apim-request-id", request_id)
    headers.setdefault("x-request-id", str(uuid.uuid4()))
    headers.setdefault(
        "x-ms-client-request-id", request.headers.get("x-ms-client-request-id", request_id)
    )
    headers.setdefault("x-ms-region", "East US")
    headers.setdefault("x-ratelimit-remaining-requests", REMAINING_REQUESTS)
    headers.setdefault("x-ratelimit-remaining-tokens", REMAINING_TOKENS)


def create_emulator_app(state: EmulatorState | None = None) -> web.Application:
    """Build the emulator; pass `state` to keep a handle on it (a fresh one otherwise)."""
    app = web.Application(middlewares=[record_request])
    app[EMULATOR_STATE] = state if state is not None else EmulatorState()
    app.on_response_prepare.append(_stamp_headers)
    _add_routes(app)
    return app


async def start_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    state: EmulatorState | None = None,
    *,
    access_log: bool = True,
) -> tuple[web.AppRunner, str]:
    """Serve the emulator on `host:port` (0: any free port); returns the runner and base URL.

    The caller owns the runner and must `await runner.cleanup()`.
    """
    # handler_cancellation: a client that leaves cancels its handler, as in the test server.
    runner = web.AppRunner(
        create_emulator_app(state),
        handler_cancellation=True,
        access_log=access_logger if access_log else None,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    return runner, str(URL.build(scheme="http", host=host, port=bound_port))
