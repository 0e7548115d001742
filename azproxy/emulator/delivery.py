"""Sending a prepared reply, JSON or SSE, with the scripted fault (if any) applied on the way."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import web

from .errors import JSON
from .replies import encode
from .state import EMULATOR_STATE, Fault

# Faults that act in the middle of a reply (the others act before it starts).
INTERRUPTIONS = ("reset", "stall", "hold")
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "x-accel-buffering": "no",
}


@dataclass(frozen=True)
class Payload:
    """A success reply ready to send: one body, or chunks written one at a time (a stream)."""

    body: bytes | Sequence[bytes]
    content_type: str = "application/json"
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


def json_response(
    body: JSON,
    status: int = 200,
    *,
    reason: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A JSON response in declaration key order (Azure's error bodies are ordered that way too)."""
    return web.Response(
        body=encode(body, azure=False),
        status=status,
        reason=reason,
        headers=headers,
        content_type="application/json",
    )


async def _misbehave(request: web.Request, fault: Fault) -> bool:
    """Act out a reset/stall/hold fault; False when the connection is gone and nothing follows."""
    if fault.kind == "reset":
        # abort() drops the socket without a FIN-terminated body: the client sees a broken payload.
        if request.transport is not None:
            request.transport.abort()
        return False
    if fault.kind == "stall":
        # Never resolves; the handler ends when the client leaves and aiohttp cancels it.
        await asyncio.get_running_loop().create_future()
    if fault.kind == "hold" and fault.release is not None:
        await fault.release.wait()
    return True


async def deliver_json(
    request: web.Request,
    body: bytes,
    fault: Fault | None,
    *,
    content_type: str = "application/json",
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """Answer with a whole body (JSON unless told) after the fault's delay or misbehaviour."""
    if fault is not None and fault.kind == "slow_first_byte":
        await asyncio.sleep(fault.delay)
    elif fault is not None:
        # After a reset the response below is simply dropped: aiohttp ignores the write error.
        await _misbehave(request, fault)
    # Through the headers, so a charset parameter ("text/plain; charset=utf-8") passes too.
    return web.Response(
        body=body, status=status, headers={**(headers or {}), "Content-Type": content_type}
    )


async def deliver_stream(
    request: web.Request,
    frames: Sequence[bytes],
    fault: Fault | None,
    *,
    headers: Mapping[str, str] = SSE_HEADERS,
) -> web.StreamResponse:
    """Stream `frames` one write each, `chunk_interval` apart, applying `fault`.

    `headers` default to an SSE stream's; binary streams (speech, file content) pass their
    own, and count as streams too.
    A client that leaves mid-stream shows up as a write error, or as cancellation when the
    server runs with handler_cancellation; both are counted on the state and re-raised.
    """
    state = request.app[EMULATOR_STATE]
    interruption = fault if fault is not None and fault.kind in INTERRUPTIONS else None
    response = web.StreamResponse(headers=headers)
    response.enable_chunked_encoding()
    try:
        if fault is not None and fault.kind == "slow_first_byte":
            await asyncio.sleep(fault.delay)
        await response.prepare(request)
        # One step past the last frame, so that after_chunks=len(frames) still interrupts.
        for index in range(len(frames) + 1):
            if (
                interruption is not None
                and index == interruption.after_chunks
                and not await _misbehave(request, interruption)
            ):
                return response  # reset: our own doing, neither completed nor aborted by the client
            if index == len(frames):
                break
            if index and state.chunk_interval:
                await asyncio.sleep(state.chunk_interval)
            await response.write(frames[index])
    except (ConnectionResetError, asyncio.CancelledError):
        state.stream_aborted()
        raise
    # Counted before the final chunk goes out, so a client that saw the end sees the count.
    state.completed_streams += 1
    await response.write_eof()
    return response


async def deliver(
    request: web.Request, payload: Payload, fault: Fault | None
) -> web.StreamResponse:
    """Send `payload` applying `fault` (a `status` fault is the caller's to answer)."""
    if not isinstance(payload.body, bytes):
        headers = {**payload.headers, "Content-Type": payload.content_type}
        return await deliver_stream(request, payload.body, fault, headers=headers)
    return await deliver_json(
        request,
        payload.body,
        fault,
        content_type=payload.content_type,
        status=payload.status,
        headers=payload.headers,
    )


def sse_payload(frames: list[bytes]) -> Payload:
    """An SSE stream of `frames`, with the headers Azure sends on one."""
    extra = {k: v for k, v in SSE_HEADERS.items() if k != "Content-Type"}
    return Payload(frames, content_type=SSE_HEADERS["Content-Type"], headers=extra)
