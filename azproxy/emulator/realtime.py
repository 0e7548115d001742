"""The Realtime API over WebSocket.

GA: `…/openai/v1/realtime?model={deployment}`; preview: `…/openai/realtime?api-version=
{preview}&deployment={deployment}`. The key comes from the `api-key` header, a Bearer token or
the `api-key` query parameter (browsers cannot set headers); a bad one is refused with 401
before the upgrade. The GA surface speaks the GA event names (`response.output_text.delta`),
the preview one the beta names (`response.text.delta`). Binary frames are echoed back.

Faults: `status` refuses the handshake, `slow_first_byte` delays it, `hold` delays
`session.created` until released, `stall` answers nothing at all, `reset` drops the connection
right after `session.created`.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import time

import orjson
from aiohttp import WSMsgType, web

from . import replies
from .checks import (
    bearer_token,
    deployment_rejection,
    failure,
    is_preview,
    key_rejection,
    not_found,
    v1_version_rejection,
)
from .delivery import json_response
from .errors import JSON, azure_error
from .state import EMULATOR_STATE, EmulatorState

OPERATION = "realtime"
SESSION_SECONDS = 30 * 60
_ALNUM = string.ascii_letters + string.digits


def _id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(22))


def _turn_detection() -> JSON:
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "create_response": True,
        "interrupt_response": True,
    }


def session_object(deployment: str, *, ga: bool) -> JSON:
    """The session `session.created` announces, GA- or beta-shaped."""
    base = {
        "id": _id("sess_"),
        "object": "realtime.session",
        "model": deployment,
        "expires_at": int(time.time()) + SESSION_SECONDS,
    }
    if not ga:
        return {
            **base,
            "modalities": ["text", "audio"],
            "instructions": "",
            "voice": "alloy",
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "input_audio_transcription": None,
            "turn_detection": _turn_detection(),
            "tools": [],
            "tool_choice": "auto",
            "temperature": 0.8,
            "max_response_output_tokens": "inf",
        }
    pcm = {"type": "audio/pcm", "rate": 24000}
    return {
        "type": "realtime",
        **base,
        "output_modalities": ["audio"],
        "instructions": "",
        "audio": {
            "input": {
                "format": pcm,
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": _turn_detection(),
            },
            "output": {"format": pcm, "voice": "alloy", "speed": 1.0},
        },
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "include": None,
    }


class Conversation:
    """One socket's session: answers client events with the server events Azure sends."""

    def __init__(self, state: EmulatorState, deployment: str, *, ga: bool) -> None:
        self.state = state
        self.deployment = deployment
        self.ga = ga
        self.session = session_object(deployment, ga=ga)
        self.items: list[str] = []

    def event(self, kind: str, **fields: object) -> JSON:
        return {"type": kind, "event_id": _id("event_"), **fields}

    def answer(self, event: JSON) -> list[JSON]:
        """The server events answering one client event."""
        kind = event.get("type")
        if kind == "session.update" and isinstance(event.get("session"), dict):
            self.session = {**self.session, **event["session"], "id": self.session["id"]}
            return [self.event("session.updated", session=self.session)]
        if kind == "conversation.item.create" and isinstance(event.get("item"), dict):
            item = {"id": _id("item_"), "object": "realtime.item", "status": "completed"}
            item.update(event["item"])
            previous = self.items[-1] if self.items else None
            self.items.append(item["id"])
            return [self.event("conversation.item.created", previous_item_id=previous, item=item)]
        if kind == "response.create":
            return self.response()
        if kind in ("input_audio_buffer.append", "response.cancel"):
            return []
        error = {
            "type": "invalid_request_error",
            "code": "invalid_value",
            "message": f"Invalid value: '{kind}'. Unsupported or malformed client event.",
            "param": "type",
            "event_id": event.get("event_id"),
        }
        return [self.event("error", error=error)]

    def response(self) -> list[JSON]:
        """A text response, delta by delta, as `response.create` gets it."""
        text = (
            self.state.reply
            if self.state.reply is not None
            else replies.default_reply(f"deployment {self.deployment}")
        )
        text_kind = "response.output_text" if self.ga else "response.text"
        resp_id, item_id = _id("resp_"), _id("item_")
        where = {"response_id": resp_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        item: JSON = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        done_item = {
            **item,
            "status": "completed",
            "content": [{"type": "output_text", "text": text}],
        }
        response: JSON = {
            "id": resp_id,
            "object": "realtime.response",
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": _id("conv_"),
            "output_modalities": ["text"],
            "max_output_tokens": "inf",
            "usage": None,
            "metadata": None,
        }
        output_tokens = len(replies.words(text))
        usage = {
            "total_tokens": 10 + output_tokens,
            "input_tokens": 10,
            "output_tokens": output_tokens,
            "input_token_details": {"text_tokens": 10, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": output_tokens, "audio_tokens": 0},
        }
        done = {**response, "status": "completed", "output": [done_item], "usage": usage}
        self.items.append(item_id)
        return [
            self.event("response.created", response=response),
            self.event(
                "response.output_item.added", response_id=resp_id, output_index=0, item=item
            ),
            self.event("response.content_part.added", **where, part={"type": "text", "text": ""}),
            *(self.event(f"{text_kind}.delta", **where, delta=w) for w in replies.words(text)),
            self.event(f"{text_kind}.done", **where, text=text),
            self.event("response.content_part.done", **where, part={"type": "text", "text": text}),
            self.event(
                "response.output_item.done", response_id=resp_id, output_index=0, item=done_item
            ),
            self.event("response.done", response=done),
        ]


def _target(request: web.Request, state: EmulatorState) -> tuple[str, bool] | web.Response:
    """The deployment and whether the GA surface is used, or the handshake's rejection."""
    ga = bool(request.match_info.get("surface"))
    if ga:
        rejection = v1_version_rejection(request)
    else:
        version = request.query.get("api-version", "")
        rejection = None if is_preview(version) else not_found()
    if rejection is not None:
        return rejection
    key = (
        request.headers.get("api-key", "").strip()
        or bearer_token(request.headers)
        or request.query.get("api-key", "").strip()
    )
    rejection = key_rejection(request, state, key)
    if rejection is not None:
        return rejection
    parameter = "model" if ga else "deployment"
    deployment = request.query.get(parameter, "")
    if not deployment:
        message = f"Missing required query parameter: {parameter}"
        return json_response(azure_error("BadRequest", message), 400)
    return deployment_rejection(state, deployment) or (deployment, ga)


async def _send(ws: web.WebSocketResponse, events: list[JSON]) -> None:
    for event in events:
        await ws.send_str(orjson.dumps(event).decode())


def _record(state: EmulatorState, text: str) -> JSON | None:
    try:
        event = orjson.loads(text)
    except orjson.JSONDecodeError:
        event = None
    state.realtime_events.append(event if isinstance(event, dict) else {"raw": text})
    return event if isinstance(event, dict) else None


async def realtime(request: web.Request) -> web.StreamResponse:
    """`GET …/openai/v1/realtime?model=` and `…/openai/realtime?api-version=&deployment=`."""
    state = request.app[EMULATOR_STATE]
    target = _target(request, state)
    if isinstance(target, web.Response):
        return target
    deployment, ga = target
    ws = web.WebSocketResponse(protocols=("realtime",))
    if not ws.can_prepare(request).ok:
        return json_response(azure_error("BadRequest", "Expected a WebSocket upgrade"), 400)
    fault = state.take_fault()
    if fault is not None and fault.kind == "status":
        return failure(fault, OPERATION, request.query.get("api-version") or "v1")
    if fault is not None and fault.kind == "slow_first_byte":
        await asyncio.sleep(fault.delay)
    await ws.prepare(request)
    state.realtime_sessions += 1
    conversation = Conversation(state, deployment, ga=ga)
    silent = fault is not None and fault.kind == "stall"
    try:
        if fault is not None and fault.kind == "hold" and fault.release is not None:
            await fault.release.wait()
        if not silent:
            await _send(ws, [conversation.event("session.created", session=conversation.session)])
        if fault is not None and fault.kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            return ws
        async for message in ws:
            if message.type == WSMsgType.BINARY and not silent:
                await ws.send_bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                event = _record(state, message.data)
                if silent:
                    continue
                if event is None:
                    event = {"type": None}
                await _send(ws, conversation.answer(event))
    finally:
        state.realtime_closed.set()
    return ws
