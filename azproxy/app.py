"""The application factory: every route on one screen, middlewares, cleanup contexts."""

from __future__ import annotations

from aiohttp import web

from . import handlers
from .cors import setup_cors
from .handlers import DeploymentCall, UnknownPath
from .keys import READINESS, REQUEST_ID, SETTINGS, Readiness
from .middlewares import deployment_middleware, error_middleware
from .passthrough import OpenAIPassthrough
from .settings import Settings
from .upstream import session_ctx

# OpenAI operations served by an Azure deployment; each also answers without the `/v1` prefix
# (clients configured with a bare base URL).
DEPLOYMENT_OPERATIONS = ("chat/completions", "completions", "embeddings")


def create_app(settings: Settings) -> web.Application:
    """Build the gateway for `settings` (whose endpoint is already resolved)."""
    app = web.Application(
        middlewares=[error_middleware, deployment_middleware], client_max_size=settings.max_body
    )
    app[SETTINGS] = settings
    app[READINESS] = Readiness()
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
    for prefix in ("/v1", ""):
        for operation in DEPLOYMENT_OPERATIONS:
            router.add_post(f"{prefix}/{operation}", DeploymentCall(operation).handle)
        router.add_post(
            f"{prefix}/engines/{{model}}/embeddings", DeploymentCall("embeddings").handle
        )
        router.add_get(f"{prefix}/models", handlers.list_models)
        router.add_get(f"{prefix}/models/{{model}}", handlers.get_model)
        router.add_get(f"{prefix}/dashboard/billing/subscription", handlers.billing_subscription)
        router.add_get(f"{prefix}/dashboard/billing/usage", handlers.billing_usage)
    for operation in DEPLOYMENT_OPERATIONS:
        handler = DeploymentCall(operation, azure_style=True).handle
        router.add_post(f"/openai/deployments/{{deployment}}/{operation}", handler)
    router.add_view("/{path:.*}", UnknownPath)


async def _start_draining(app: web.Application) -> None:
    app[READINESS].ready = False


async def _stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    # Runs for every response, streams and errors included, just before headers are sent.
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers.setdefault("x-request-id", request_id)
