"""Thin route handlers, one per OpenAI path; the work is in `upstream` and `relay`."""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp_cors
from aiohttp import web

from . import __version__
from .credentials import client_key, parse_triple_key
from .errors import MethodNotAllowed, NotFound
from .keys import CLIENT_SESSION, LIVE_DEPLOYMENTS, READINESS, SETTINGS
from .live_models import LiveDeploymentsError
from .responses import json_response
from .targets import UNSUPPORTED_ON_AZURE

_STARTED = int(time.time())
log = logging.getLogger("azproxy")


async def _model_ids(request: web.Request) -> list[str]:
    """The models this client can name: the mapper's and its triple key's; with live listing,
    the resource's deployments and the aliases that map to one of them."""
    mapping = request.app[SETTINGS].model_mapping
    ids = set(mapping)
    live = request.app.get(LIVE_DEPLOYMENTS)
    if live is not None:
        try:
            deployments = set(await live.names(request.app[CLIENT_SESSION]))
        except LiveDeploymentsError as exc:
            log.warning("live model listing failed (%s); listing the mapper's models", exc)
        else:
            ids = deployments | {alias for alias, d in mapping.items() if d in deployments}
    key = client_key(request.headers.get("api-key"), request.headers.get("Authorization"))
    if key and ":" in key and not request.app[SETTINGS].token:
        ids.update(parse_triple_key(key).mapping)
    return sorted(ids)


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _STARTED, "owned_by": "azure-openai"}


async def list_models(request: web.Request) -> web.Response:
    """`GET /v1/models` in OpenAI's shape."""
    ids = await _model_ids(request)
    return json_response({"object": "list", "data": [_model(m) for m in ids]})


async def get_model(request: web.Request) -> web.Response:
    """`GET /v1/models/{model}`; unknown → 404 `model_not_found`."""
    model_id = request.match_info["model"]
    if model_id not in await _model_ids(request):
        raise NotFound(
            f"The model '{model_id}' does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
    return json_response(_model(model_id))


async def health(request: web.Request) -> web.Response:
    """Liveness for load balancers."""
    return json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness: 503 once the process is draining, so load balancers stop sending work."""
    if not request.app[READINESS].ready:
        return json_response({"status": "draining"}, status=503)
    return json_response({"status": "ready"})


async def root(request: web.Request) -> web.Response:
    """`GET /` (and `HEAD /`): who answers here."""
    settings = request.app[SETTINGS]
    return json_response({"service": "azproxy", "version": __version__, "mode": settings.mode})


async def billing_subscription(request: web.Request) -> web.Response:
    """Mock for ChatGPT-Next-Web's balance poll: Azure has no such API, so no limit is shown."""
    return json_response(
        {
            "object": "billing_subscription",
            "has_payment_method": True,
            "soft_limit_usd": 0.0,
            "hard_limit_usd": 0.0,
            "system_hard_limit_usd": 0.0,
            "access_until": 0,
        }
    )


async def billing_usage(request: web.Request) -> web.Response:
    """Mock for ChatGPT-Next-Web's usage poll (cents; Azure bills elsewhere)."""
    return json_response({"object": "list", "daily_costs": [], "total_usage": 0.0})


class CorsView(aiohttp_cors.CorsViewMixin, web.View):
    """Base of catch-all views: aiohttp-cors answers OPTIONS for any path through it."""

    @classmethod
    def get_request_config(cls, request: web.Request, request_method: str) -> Any:
        # aiohttp-cors looks up per-method config and raises KeyError for methods a view
        # lacks (e.g. PROPFIND); these views treat every method alike.
        return super().get_request_config(request, "GET")  # type: ignore[no-untyped-call]


class UnknownPath(CorsView):
    """Any path the gateway does not serve: 404 `unknown_url`, or 405 on a known path."""

    async def _answer(self) -> web.StreamResponse:
        request = self.request
        _refuse_unsupported(request.path)
        allowed: set[str] = set()
        for resource in request.app.router.resources():
            if resource is not request.match_info.route.resource:
                match, methods = await resource.resolve(request)
                if match is None:
                    allowed |= methods
        allowed.discard("OPTIONS")
        if allowed:
            allow = ", ".join(sorted(allowed))
            raise MethodNotAllowed(
                f"{request.method} is not allowed on {request.path}; use {allow}.",
                headers={"Allow": allow},
            )
        raise NotFound(f"Unknown request URL: {request.method} {request.path}.", code="unknown_url")

    get = post = put = patch = delete = head = _answer


def _refuse_unsupported(path: str) -> None:
    """OpenAI APIs Azure does not offer get a clear answer rather than a generic 404."""
    parts = path.strip("/").removeprefix("v1/").split("/")
    for depth in (2, 1):
        name = "/".join(parts[:depth])
        if name in UNSUPPORTED_ON_AZURE:
            raise NotFound(
                f"Azure OpenAI does not offer the OpenAI API /v1/{name}, so azproxy cannot "
                "serve it.",
                code="unsupported_on_azure",
            )
