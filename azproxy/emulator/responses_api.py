"""The Responses API: `…/openai/v1/responses` and the classic `…/openai/responses?api-version=`.

Objects follow openai-python's `Response` model; streams are SSE with `event:` lines, one
`sequence_number` per event and no `[DONE]`. Created responses are kept on the state (unless
`store` is false) for retrieval, deletion, input items and cancellation.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import orjson
from aiohttp import web

from . import replies
from .catalogue import model_of
from .checks import answer, deployment_rejection, since, surface_rejection
from .delivery import Payload, json_response, sse_payload
from .errors import JSON, invalid_request, missing_property
from .handlers import read_object, unparsable
from .state import EMULATOR_STATE, EmulatorState, StoredResponse

CLASSIC_SINCE = since("2025-03-01")
OPERATION = "responses"
CANCEL_ONLY_BACKGROUND = "Only responses created with background=true can be cancelled."


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def _text_part(text: str, *, output: bool) -> JSON:
    if output:
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
    return {"type": "input_text", "text": text}


def input_items(value: object) -> list[JSON] | None:
    """`input` as stored input items (a string is one user message); None if malformed."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list):
        return None
    items = []
    for raw in value:
        if not isinstance(raw, dict):
            return None
        item: JSON = {"id": raw.get("id") or _id("msg"), **raw}
        item.setdefault("type", "message")
        if item["type"] == "message":
            content = item.get("content")
            if isinstance(content, str):
                item["content"] = [_text_part(content, output=item.get("role") == "assistant")]
            elif not isinstance(content, list):
                return None
            item.setdefault("status", "completed")
        items.append(item)
    return items


def _words(items: list[JSON], instructions: object) -> int:
    texts: list[object] = [instructions]
    for item in items:
        content = item.get("content")
        parts = content if isinstance(content, list) else []
        texts += [p.get("text") for p in parts if isinstance(p, dict)]
    return sum(len(t.split()) for t in texts if isinstance(t, str))


def _usage(input_tokens: int, output_tokens: int) -> JSON:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def message_item(item_id: str, text: str | None) -> JSON:
    """The assistant's output message: in progress and empty when `text` is None."""
    content = [] if text is None else [_text_part(text, output=True)]
    status = "in_progress" if text is None else "completed"
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "content": content,
        "role": "assistant",
    }


def model_name(deployment: str) -> str:
    """The model a deployment serves, dated as Azure names it (gpt-4o → gpt-4o-2024-11-20)."""
    model, version = model_of(deployment)
    return f"{model}-{version}" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", version) else model


def response_object(resp_id: str, body: JSON, status: str, output: list[JSON], usage: Any) -> JSON:
    """A Responses API object echoing the request's settings."""
    return {
        "id": resp_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": body.get("background") is True,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model_name(body["model"]),
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store") is not False,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def stream_events(final: JSON, text: str) -> list[JSON]:
    """The events of a streamed response, ending in `final` (the completed object)."""
    item = final["output"][0]
    where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    pending = {**final, "status": "in_progress", "output": [], "usage": None}
    empty, part = _text_part("", output=True), item["content"][0]
    events: list[JSON] = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": message_item(item["id"], None),
        },
        {"type": "response.content_part.added", **where, "part": empty},
        *(
            {"type": "response.output_text.delta", **where, "delta": w, "logprobs": []}
            for w in replies.words(text)
        ),
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": final},
    ]
    return [{"type": e.pop("type"), "sequence_number": n, **e} for n, e in enumerate(events)]


def sse_event(event: JSON) -> bytes:
    """One Responses SSE event: an `event:` line naming its type, then its data."""
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def _not_found(resp_id: str) -> web.Response:
    return json_response(invalid_request(f"Response with id '{resp_id}' not found."), 404)


def _create(body: JSON, state: EmulatorState) -> tuple[Payload, StoredResponse] | web.Response:
    items = input_items(body.get("input"))
    if items is None:
        message = "Invalid type for 'input': expected a string or an array of input items."
        return json_response(invalid_request(message, "input"), 400)
    previous = body.get("previous_response_id")
    if previous is not None and previous not in state.responses:
        message = f"Previous response with id '{previous}' not found."
        return json_response(invalid_request(message, "previous_response_id"), 400)
    model, resp_id, item_id = body["model"], _id("resp"), _id("msg")
    stored = StoredResponse({}, items, background=body.get("background") is True)
    if stored.background:
        stored.body = response_object(resp_id, body, "queued", [], None)
        return Payload(orjson.dumps(stored.body)), stored
    text = state.reply if state.reply is not None else replies.default_reply(f"deployment {model}")
    usage = _usage(max(1, _words(items, body.get("instructions"))), len(replies.words(text)))
    stored.body = response_object(resp_id, body, "completed", [message_item(item_id, text)], usage)
    if body.get("stream") is True:
        return sse_payload([sse_event(e) for e in stream_events(stored.body, text)]), stored
    return Payload(orjson.dumps(stored.body)), stored


async def create_response(request: web.Request) -> web.StreamResponse:
    """`POST …/openai/v1/responses`, `POST …/openai/responses?api-version=`."""
    state = request.app[EMULATOR_STATE]
    rejection = surface_rejection(request, state, CLASSIC_SINCE)
    if rejection is not None:
        return rejection
    body = await read_object(request)
    if body is None:
        return unparsable()
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return json_response(missing_property("model"), 400)
    rejection = deployment_rejection(state, model)
    if rejection is not None:
        return rejection
    created = _create(body, state)
    if isinstance(created, web.Response):
        return created
    reply, stored = created

    def keep() -> None:
        if stored.body["store"]:
            state.responses[stored.body["id"]] = stored

    return await answer(request, OPERATION, reply, keep)


def _stored(request: web.Request) -> StoredResponse | web.Response:
    state = request.app[EMULATOR_STATE]
    rejection = surface_rejection(request, state, CLASSIC_SINCE)
    if rejection is not None:
        return rejection
    stored = state.responses.get(request.match_info["response_id"])
    return _not_found(request.match_info["response_id"]) if stored is None else stored


async def get_response(request: web.Request) -> web.StreamResponse:
    """`GET …/responses/{id}`."""
    stored = _stored(request)
    if isinstance(stored, web.Response):
        return stored
    return await answer(request, OPERATION, Payload(orjson.dumps(stored.body)))


async def delete_response(request: web.Request) -> web.StreamResponse:
    """`DELETE …/responses/{id}`."""
    stored = _stored(request)
    if isinstance(stored, web.Response):
        return stored
    resp_id = stored.body["id"]
    deleted = {"id": resp_id, "object": "response", "deleted": True}

    def forget() -> None:
        request.app[EMULATOR_STATE].responses.pop(resp_id, None)

    return await answer(request, OPERATION, Payload(orjson.dumps(deleted)), forget)


async def list_input_items(request: web.Request) -> web.StreamResponse:
    """`GET …/responses/{id}/input_items` (`order` desc by default, `limit` 20)."""
    stored = _stored(request)
    if isinstance(stored, web.Response):
        return stored
    items = list(stored.input_items)
    if request.query.get("order", "desc") == "desc":
        items.reverse()
    limit = request.query.get("limit", "20")
    count = int(limit) if limit.isdigit() and 1 <= int(limit) <= 100 else 20
    page = items[:count]
    body = {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > count,
    }
    return await answer(request, OPERATION, Payload(orjson.dumps(body)))


async def cancel_response(request: web.Request) -> web.StreamResponse:
    """`POST …/responses/{id}/cancel`: only background responses can be cancelled."""
    stored = _stored(request)
    if isinstance(stored, web.Response):
        return stored
    if not stored.background:
        return json_response(invalid_request(CANCEL_ONLY_BACKGROUND), 400)
    body = stored.body
    if body["status"] in ("queued", "in_progress"):
        body = {**body, "status": "cancelled"}

    def cancel() -> None:
        stored.body = body

    return await answer(request, OPERATION, Payload(orjson.dumps(body)), cancel)
