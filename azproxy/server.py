"""Running the gateway: the emulator when no endpoint is set, the HTTP server, worker processes."""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
from dataclasses import replace

from aiohttp import web

from . import __version__
from .accesslog import AccessLogger
from .app import create_app
from .listener import EagerTCPSite, ListenError
from .runner import GatewayRunner
from .settings import Settings

log = logging.getLogger("azproxy")

# The cyclic GC's first-generation threshold (CPython's default: 700 allocations). Measured with
# 1,000 streams open: the default spent 10 % of the gateway's CPU in the collector, with
# full-heap pauses of up to 90 ms; 10,000 spent 3 %, without the full collections.
GC_YOUNG_THRESHOLD = 10_000


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
    log.info(
        "azproxy %s listening on http://%s:%d (%s mode, upstream %s)",
        __version__,
        settings.host,
        settings.port,
        settings.mode,
        upstream,
    )
    return app


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on CPython/Unix
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM, then drain in-flight requests for the shutdown timeout."""
    loop = _new_loop()
    try:
        loop.run_until_complete(_serve(settings))
    except ListenError as exc:
        # Like a configuration error: one line, no traceback (a worker's exit code is 1 too).
        sys.exit(f"azproxy: {exc.strerror}")
    finally:
        loop.close()
        # A worker process ends without running atexit hooks: write out batched log lines.
        for handler in logging.getLogger().handlers:
            handler.flush()


async def _serve(settings: Settings) -> None:
    runner = GatewayRunner(
        await build_app(settings),
        handler_cancellation=True,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("azproxy.access") if settings.access_log else None,
        shutdown_timeout=settings.shutdown_timeout,
    )
    await runner.setup()
    try:
        # aiohttp's default backlog of 128 drops SYNs when a UI reconnects hundreds of streams
        # at once, and each dropped SYN costs the client a 1 s (then 3 s) retransmit.
        site = EagerTCPSite(
            runner,
            settings.host,
            settings.port,
            backlog=settings.backlog,
            reuse_port=settings.workers > 1,
        )
        await site.start()
        settle_heap()
        await _until_signalled()
        log.info("azproxy draining (up to %g s) and stopping", settings.shutdown_timeout)
    finally:
        await runner.cleanup()


def settle_heap() -> None:
    """Set the cyclic GC up for a long-running server, once start-up is over.

    What start-up built (modules, the app, its routes) lives as long as the process: frozen,
    later collections skip it. Most of a request's objects are freed by reference counting
    anyway; the collector is only for cycles, which now wait a little longer to be found (peak
    RSS in the benchmark did not change).
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def serve_workers(settings: Settings) -> int:
    """Run `settings.workers` processes on one SO_REUSEPORT port; return the exit status.

    The kernel spreads new connections across the processes, so no master process sits on the
    request path. A signal to the parent is passed to every worker; if one worker dies, the
    others are stopped too, so a supervisor (systemd, Kubernetes) sees the failure.
    """
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=serve, args=(settings,)) for _ in range(settings.workers)]
    for worker in workers:
        worker.start()
    log.info("azproxy started %d workers on %s:%d", len(workers), settings.host, settings.port)

    def forward(signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    sentinels = {worker.sentinel: worker for worker in workers}
    ready = multiprocessing.connection.wait(list(sentinels))
    first = sentinels[ready[0]]  # type: ignore[index]
    forward(signal.SIGTERM, None)
    for worker in workers:
        worker.join()
    return first.exitcode or 0
