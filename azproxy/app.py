"""The application factory: every route on one screen, middlewares, cleanup contexts."""

from __future__ import annotations

from aiohttp import web

from . import handlers
from .calls import (
    DeploymentCall,
    MultipartCall,
    ResourceCall,
    ResponsesCreate,
    Style,
    UpstreamHandler,
)
from .cors import setup_cors
from .handlers import UnknownPath
from .keys import LIVE_DEPLOYMENTS, READINESS, REQUEST_ID, SETTINGS, Readiness
from .live_models import LiveDeployments
from .middlewares import deployment_middleware, error_middleware
from .passthrough import OpenAIPassthrough
from .realtime import realtime
from .settings import Settings
from .targets import DEPLOYMENT_OPERATIONS, RESOURCE_GROUPS, Operation
from .upstream import session_ctx

EMBEDDINGS = next(op for op in DEPLOYMENT_OPERATIONS if op.path == "embeddings")


def create_app(settings: Settings) -> web.Application:
    """Build the gateway for `settings` (whose endpoint is already resolved)."""
    app = web.Application(
        middlewares=[error_middleware, deployment_middleware], client_max_size=settings.max_body
    )
    app[SETTINGS] = settings
    app[READINESS] = Readiness()
    if settings.management is not None:
        app[LIVE_DEPLOYMENTS] = LiveDeployments(settings.management)
    app.cleanup_ctx.append(session_ctx)
    app.on_shutdown.append(_start_draining)
    app.on_response_prepare.append(_stamp_request_id)
    _add_routes(app.router, settings)
    setup_cors(app)
    return app


def _add_routes(router: web.UrlDispatcher, settings: Settings) -> None:
    router.add_get("/health", handlers.health)
    router.add_get("/ready", handlers.ready)
    router.add_get("/", handlers.root)
    if settings.mode == "openai":
        router.add_view("/{path:.*}", OpenAIPassthrough)
        return
    # OpenAI style, with and without /v1 (clients configured with a bare base URL).
    for prefix in ("/v1", ""):
        _add_azure_calls(router, prefix, "openai")
        router.add_post(f"{prefix}/engines/{{model}}/embeddings", DeploymentCall(EMBEDDINGS).handle)
        router.add_get(f"{prefix}/dashboard/billing/subscription", handlers.billing_subscription)
        router.add_get(f"{prefix}/dashboard/billing/usage", handlers.billing_usage)
        router.add_get(f"{prefix}/models", handlers.list_models)
        router.add_get(f"{prefix}/models/{{model}}", handlers.get_model)
    # Azure style, for AzureOpenAI clients: classic routes (their api-version wins) and v1.
    for operation in DEPLOYMENT_OPERATIONS:
        router.add_post(
            f"/openai/deployments/{{deployment}}/{operation.path}",
            _call_for(operation, "azure").handle,
        )
    _add_azure_calls(router, "/openai", "azure", operations=False)
    _add_azure_calls(router, "/openai/v1", "azure_v1")
    router.add_get("/openai/models", handlers.list_models)
    router.add_get("/openai/v1/models", handlers.list_models)
    for path in ("/v1/realtime", "/realtime", "/openai/v1/realtime", "/openai/realtime"):
        router.add_get(path, realtime)
    router.add_view("/{path:.*}", UnknownPath)


def _add_azure_calls(
    router: web.UrlDispatcher, prefix: str, style: Style, *, operations: bool = True
) -> None:
    """Deployment operations and resource-level groups under one path prefix."""
    if operations:
        for operation in DEPLOYMENT_OPERATIONS:
            router.add_post(f"{prefix}/{operation.path}", _call_for(operation, style).handle)
    router.add_post(f"{prefix}/responses", ResponsesCreate("responses", style).handle)
    for group, family in RESOURCE_GROUPS.items():
        call = ResourceCall(group, family, style).handle
        for path in (f"{prefix}/{group}", f"{prefix}/{group}/{{tail:.+}}"):
            for method in ("GET", "POST", "DELETE"):
                if not (group == "responses" and path.endswith(group) and method == "POST"):
                    router.add_route(method, path, call)


def _call_for(operation: Operation, style: Style) -> UpstreamHandler:
    if operation.body == "multipart":
        return MultipartCall(operation, style)
    return DeploymentCall(operation, style)


async def _start_draining(app: web.Application) -> None:
    app[READINESS].ready = False


async def _stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    # Runs for every response, streams and errors included, just before headers are sent.
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers.setdefault("x-request-id", request_id)
