"""The emulator application: routes in one place, request recording, Azure's response headers."""

from __future__ import annotations

import uuid

from aiohttp import web
from aiohttp.log import access_logger
from aiohttp.typedefs import Handler
from yarl import URL

from . import files, resources, responses_api
from .handlers import (
    FORM_MEDIA,
    JSON_MEDIA,
    azure_operation,
    deployment_media,
    not_found,
    openai_chat,
    openai_models,
)
from .management import arm, token
from .realtime import realtime
from .resources import BATCH_ACTIVE, BATCHES, JOB_ACTIVE, JOBS, VECTOR_STORES
from .state import EMULATOR_STATE, EmulatorState, RecordedRequest
from .uploads import RECORD, TEE, TeeStream, is_multipart
from .v1 import OPERATIONS as V1_OPERATIONS
from .v1 import v1_model, v1_models, v1_operation

# APIM front doors put their own prefix before /openai/, so any prefix is accepted.
PREFIX = "/{prefix:(?:.*/)?}openai/"
DEPLOYMENT = PREFIX + "deployments/{deployment}/"
AZURE_OPERATION = DEPLOYMENT + "{operation:chat/completions|completions|embeddings}"
MEDIA_OPERATION = DEPLOYMENT + "{operation:" + "|".join([*JSON_MEDIA, *FORM_MEDIA]) + "}"
V1 = PREFIX + "v1/"
V1_ONLY = PREFIX + "{surface:v1/}"  # a v1-only route that shares handlers with BOTH routes
# Routes served on both surfaces: `surface` is "v1/" for the v1 path, "" for the classic one.
BOTH = PREFIX + "{surface:(?:v1/)?}"
REMAINING_REQUESTS = "99"
REMAINING_TOKENS = "149000"


def _add_resource_routes(router: web.UrlDispatcher) -> None:
    router.add_post(BOTH + "responses", responses_api.create_response)
    router.add_get(BOTH + "responses/{response_id}", responses_api.get_response)
    router.add_delete(BOTH + "responses/{response_id}", responses_api.delete_response)
    router.add_get(BOTH + "responses/{response_id}/input_items", responses_api.list_input_items)
    router.add_post(BOTH + "responses/{response_id}/cancel", responses_api.cancel_response)
    router.add_post(BOTH + "files", files.upload_file)
    router.add_get(BOTH + "files", files.list_files)
    router.add_get(BOTH + "files/{file_id}", files.get_file)
    router.add_delete(BOTH + "files/{file_id}", files.delete_file)
    router.add_get(BOTH + "files/{file_id}/content", files.file_content)
    # Batches are classic only; vector stores v1 only (classic has them in previews alone).
    collections = [
        (
            PREFIX + "batches",
            BATCHES,
            resources.canceller(BATCHES, BATCH_ACTIVE, "cancelling", "cancelling_at"),
        ),
        (BOTH + "fine_tuning/jobs", JOBS, resources.canceller(JOBS, JOB_ACTIVE, "cancelled", None)),
        (V1_ONLY + "vector_stores", VECTOR_STORES, None),
    ]
    for path, kind, cancel in collections:
        router.add_post(path, resources.creator(kind))
        router.add_get(path, resources.lister(kind))
        router.add_get(path + "/{object_id}", resources.getter(kind))
        if cancel is not None:
            router.add_post(path + "/{object_id}/cancel", cancel)
    router.add_delete(
        V1_ONLY + "vector_stores/{object_id}",
        resources.deleter(VECTOR_STORES, "vector_store.deleted"),
    )


def _add_routes(app: web.Application) -> None:
    router = app.router
    router.add_post(AZURE_OPERATION, azure_operation)
    router.add_post(MEDIA_OPERATION, deployment_media)
    router.add_post(V1 + "{operation:" + V1_OPERATIONS + "}", v1_operation)
    router.add_get(V1 + "models", v1_models)
    router.add_get(V1 + "models/{model}", v1_model)
    _add_resource_routes(router)
    router.add_get(BOTH + "realtime", realtime)
    router.add_route("*", "/subscriptions/{tail:.*}", arm)
    router.add_post("/{tenant}/oauth2/v2.0/token", token)
    router.add_post("/v1/chat/completions", openai_chat)
    router.add_get("/v1/models", openai_models)
    # Last: anything else, including a known path with the wrong method, is Azure's 404.
    router.add_route("*", "/{tail:.*}", not_found)


@web.middleware
async def record_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record every request, valid or not, before any check can reject it.

    A multipart body is not read here: handlers parse it as it arrives, through a tee that
    records its raw bytes (up to the state's `record_limit`); what they leave unread is
    drained and recorded after them.
    """
    state = request.app[EMULATOR_STATE]
    streamed = is_multipart(request)
    body = b"" if streamed else await request.read()
    record = RecordedRequest(
        method=request.method,
        path=request.rel_url.raw_path,
        query=dict(request.query.items()),  # from pairs, so the last value wins
        headers=request.headers,
        body=body,
        body_size=len(body),
    )
    state.requests.append(record)
    request[RECORD] = record
    if not streamed:
        return await handler(request)
    tee = request[TEE] = TeeStream(request.content, record, state.record_limit)
    try:
        response = await handler(request)
        await tee.drain()
        return response
    finally:
        tee.finish()


async def _stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    # setdefault: a handler's own value (x-ratelimit-remaining-requests: 0 on a 429) wins.
    headers = response.headers
    request_id = str(uuid.uuid4())
    if request.path.startswith("/subscriptions/"):
        headers.setdefault("x-ms-request-id", request_id)
        headers.setdefault("x-ms-correlation-request-id", request_id)
        return
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
    app.on_cleanup.append(_discard_files)
    _add_routes(app)
    return app


async def _discard_files(app: web.Application) -> None:
    # Spooled uploads may sit in temporary files; release them with the server.
    app[EMULATOR_STATE].discard_files()


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
