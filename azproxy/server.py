"""Running the gateway: the emulator when no endpoint is set, then the HTTP server."""

from __future__ import annotations

import logging
from dataclasses import replace

from aiohttp import web

from .accesslog import AccessLogger
from .app import create_app
from .settings import Settings

log = logging.getLogger("azproxy")


async def build_app(settings: Settings) -> web.Application:
    """The gateway app; in azure mode without an endpoint, in front of the built-in emulator."""
    if settings.mode == "azure" and settings.endpoint is None:
        from .emulator import EmulatorState, start_emulator

        # A small pause between events makes the demo stream visibly, as real Azure does;
        # the emulator's own access log would only repeat the gateway's.
        demo = EmulatorState(chunk_interval=0.05)
        runner, url = await start_emulator(state=demo, access_log=False)
        settings = replace(settings, endpoint=url)
        log.warning(
            "No AZURE_OPENAI_ENDPOINT set: serving from the built-in Azure EMULATOR at %s. "
            "Replies are canned; set AZURE_OPENAI_ENDPOINT to use real Azure OpenAI.",
            url,
        )
        app = create_app(settings)

        async def stop_emulator(_: web.Application) -> None:
            await runner.cleanup()

        app.on_cleanup.append(stop_emulator)
    else:
        app = create_app(settings)
    upstream = settings.openai_base if settings.mode == "openai" else settings.endpoint
    log.info("azproxy %s mode, upstream %s", settings.mode, upstream)
    return app


def serve(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM, with handler cancellation on client disconnect."""
    web.run_app(
        build_app(settings),
        host=settings.host,
        port=settings.port,
        handler_cancellation=True,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("azproxy.access") if settings.access_log else None,
        print=lambda message: log.info("%s", message),
        shutdown_timeout=10,
    )
