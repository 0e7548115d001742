"""The two middlewares: errors (outermost) and credentials + deployment resolution."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from .accesslog import log_abandoned
from .body import model_of, parse_object
from .calls import UpstreamHandler
from .credentials import client_key, credentials_for
from .errors import (
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    error_body,
)
from .keys import BODY, CREDENTIALS, DEPLOYMENT, MODEL, PAYLOAD, REQUEST_ID, SETTINGS
from .responses import json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("azproxy")

# A client's request id is echoed in headers and logs: accept only a plain token.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Stamp the request id, and turn every failure into an OpenAI-shaped error response."""
    client_id = request.headers.get("x-request-id", "")
    # 128 random bits, as uuid4 carries, for a third of its cost.
    request[REQUEST_ID] = client_id if _REQUEST_ID.fullmatch(client_id) else os.urandom(16).hex()
    started = time.monotonic()
    try:
        return await handler(request)
    except (asyncio.CancelledError, ConnectionResetError):
        if request.app[SETTINGS].access_log:
            log_abandoned(request, time.monotonic() - started)
        raise
    except GatewayError as exc:
        return json_response(exc.to_dict(), status=exc.status, headers=exc.headers)
    except web.RequestPayloadError:
        # e.g. a body that is not the gzip its Content-Encoding claims
        error = InvalidRequest("The request body could not be read.", code="invalid_body")
        return json_response(error.to_dict(), status=error.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(request, exc)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        body = error_body("The gateway failed to handle the request.", "server_error", None, None)
        return json_response(body, status=500)


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors (404, 405, 413, CORS 403) in OpenAI's shape."""
    error: GatewayError
    if exc.status == 404:
        error = NotFound(
            f"Unknown request URL: {request.method} {request.path}.", code="unknown_url"
        )
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        error = MethodNotAllowed(
            f"{request.method} is not allowed on {request.path}.",
            headers={"Allow": ", ".join(sorted(exc.allowed_methods))},
        )
    elif exc.status == 413:
        error = PayloadTooLarge.over(request.app[SETTINGS].max_body)
    else:
        body = error_body(exc.text or exc.reason, "invalid_request_error", None, None)
        return json_response(body, status=exc.status)
    return json_response(error.to_dict(), status=error.status, headers=error.headers)


@web.middleware
async def deployment_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """For upstream calls: resolve credentials; for JSON ones also body, model → deployment."""
    owner = getattr(request.match_info.handler, "__self__", None)
    if not isinstance(owner, UpstreamHandler):
        return await handler(request)
    key = client_key(request.headers.get("api-key"), request.headers.get("Authorization"))
    credentials = credentials_for(request.app[SETTINGS], key)
    request[CREDENTIALS] = credentials
    if not owner.json_model:
        return await handler(request)
    body = await request.read()
    payload = parse_object(body)
    # The model named in the path (legacy engines, Azure-style deployments) beats the body's.
    path_model = request.match_info.get("model") or request.match_info.get("deployment")
    model = path_model or model_of(payload)
    request[BODY] = body
    request[PAYLOAD] = payload
    request[MODEL] = model
    request[DEPLOYMENT] = credentials.deployment_for(model)
    return await handler(request)
