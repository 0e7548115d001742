"""Handlers: Azure's classic deployment routes, a minimal api.openai.com, and Azure's 404.

Azure checks a request in a fixed order (api-version, key, deployment, body) and only then may
throttle or fail it, so queued faults are consumed only by requests that pass every check.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

from . import replies
from .delivery import deliver_json, deliver_stream, json_response
from .errors import (
    ACCESS_DENIED,
    DEPLOYMENT_NOT_FOUND,
    JSON,
    NO_API_KEY,
    RESOURCE_NOT_FOUND,
    SERVER_ERROR,
    UNPARSABLE_BODY,
    azure_error,
    azure_rate_limited,
    incorrect_key,
    openai_error,
    openai_rate_limited,
)
from .state import EMULATOR_STATE, EmulatorState, Fault

# A reply ready to send: one JSON body, or the SSE frames of a stream, or a rejection.
Reply = bytes | list[bytes] | web.Response


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token of an `Authorization: Bearer …` header, or ""."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _azure_rejection(request: web.Request, state: EmulatorState) -> web.Response | None:
    if not request.query.get("api-version"):
        return json_response(azure_error("404", RESOURCE_NOT_FOUND), 404)
    key = request.headers.get("api-key", "").strip() or bearer_token(request.headers)
    if not key or (state.keys is not None and key not in state.keys):
        denied = azure_error("401", ACCESS_DENIED)
        return json_response(denied, 401, reason="PermissionDenied")
    if state.deployments is not None and request.match_info["deployment"] not in state.deployments:
        return json_response(azure_error("DeploymentNotFound", DEPLOYMENT_NOT_FOUND), 404)
    return None


async def _read_object(request: web.Request) -> JSON | None:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _include_usage(body: JSON) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _frames(events: list[JSON], *, azure: bool) -> list[bytes]:
    return [replies.sse(event, azure=azure) for event in events] + [replies.DONE]


def _is_tokens(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(t, int) for t in value)


def _embedding_inputs(value: object) -> list[str] | None:
    # `input` is a string, a token array, or a non-empty list of either.
    items = [value] if isinstance(value, str) or _is_tokens(value) else value
    if not isinstance(items, list) or not items:
        return None
    texts = []
    for item in items:
        if isinstance(item, str):
            texts.append(item)
        elif _is_tokens(item):
            texts.append(" ".join(str(t) for t in item))
        else:
            return None
    return texts


def _prompts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [p for p in value if isinstance(p, str)] if isinstance(value, list) else []


def _embeddings_reply(body: JSON) -> Reply:
    texts = _embedding_inputs(body.get("input"))
    if texts is None:
        message = (
            "'input' is a required property"
            if "input" not in body
            else "'$.input' is invalid. Please check the API reference: "
            "https://platform.openai.com/docs/api-reference."
        )
        return json_response(openai_error(message), 400)
    as_base64 = body.get("encoding_format") == "base64"
    return replies.encode(replies.embeddings(texts, as_base64=as_base64), azure=True)


def _azure_reply(operation: str, deployment: str, body: JSON, state: EmulatorState) -> Reply:
    if operation == "embeddings":
        return _embeddings_reply(body)
    text = (
        state.reply
        if state.reply is not None
        else replies.default_reply(f"deployment {deployment}")
    )
    stream, usage = body.get("stream") is True, _include_usage(body)
    if operation == "completions":
        stamp = replies.new_stamp("cmpl", replies.COMPLETIONS_MODEL)
        tokens = replies.text_tokens(_prompts(body.get("prompt")))
        if stream:
            events = replies.completion_events(stamp, text, tokens, include_usage=usage)
            return _frames(events, azure=True)
        return replies.encode(replies.azure_completion(stamp, text, tokens), azure=True)
    stamp = replies.new_stamp("chatcmpl", replies.CHAT_MODEL)
    tokens = replies.chat_prompt_tokens(body)
    if stream:
        events = replies.chat_events(stamp, text, tokens, include_usage=usage, azure=True)
        return _frames(events, azure=True)
    return replies.encode(replies.azure_chat(stamp, text, tokens), azure=True)


def _failure(fault: Fault, body: JSON) -> web.Response:
    headers: dict[str, str] = {}
    if fault.status == 429:
        headers = {
            "retry-after": str(fault.retry_after),
            "retry-after-ms": str(fault.retry_after * 1000),
            "x-ratelimit-remaining-requests": "0",
        }
    return json_response(body, fault.status, headers=headers)


async def _deliver(
    request: web.Request, reply: bytes | list[bytes], fault: Fault | None
) -> web.StreamResponse:
    if isinstance(reply, list):
        return await deliver_stream(request, reply, fault)
    return await deliver_json(request, reply, fault)


async def azure_operation(request: web.Request) -> web.StreamResponse:
    """`POST …/openai/deployments/{deployment}/{chat/completions|completions|embeddings}`."""
    state = request.app[EMULATOR_STATE]
    rejection = _azure_rejection(request, state)
    if rejection is not None:
        return rejection
    body = await _read_object(request)
    if body is None:
        return json_response(openai_error(UNPARSABLE_BODY), 400)
    operation = request.match_info["operation"]
    reply = _azure_reply(operation, request.match_info["deployment"], body, state)
    if isinstance(reply, web.Response):
        return reply
    fault = state.take_fault()
    if fault is not None and fault.kind == "status":
        if fault.status == 429:
            version = request.query["api-version"]
            return _failure(fault, azure_rate_limited(operation, version, fault.retry_after))
        return _failure(fault, azure_error("InternalServerError", SERVER_ERROR))
    return await _deliver(request, reply, fault)


def _openai_rejection(request: web.Request, state: EmulatorState) -> web.Response | None:
    key = bearer_token(request.headers)
    if not key:
        return json_response(openai_error(NO_API_KEY), 401)
    if state.keys is not None and key not in state.keys:
        return json_response(incorrect_key(key), 401)
    return None


async def openai_chat(request: web.Request) -> web.StreamResponse:
    """`POST /v1/chat/completions` as api.openai.com answers it (for the passthrough mode)."""
    state = request.app[EMULATOR_STATE]
    rejection = _openai_rejection(request, state)
    if rejection is not None:
        return rejection
    body = await _read_object(request)
    if body is None:
        return json_response(openai_error(UNPARSABLE_BODY), 400)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return json_response(openai_error("you must provide a model parameter"), 400)
    fault = state.take_fault()
    if fault is not None and fault.kind == "status":
        if fault.status == 429:
            return _failure(fault, openai_rate_limited(fault.retry_after))
        return _failure(fault, openai_error(SERVER_ERROR, None, "server_error"))
    text = state.reply if state.reply is not None else replies.default_reply(f"model {model}")
    stamp = replies.new_stamp("chatcmpl", model)
    tokens = replies.chat_prompt_tokens(body)
    if body.get("stream") is True:
        usage = _include_usage(body)
        events = replies.chat_events(stamp, text, tokens, include_usage=usage, azure=False)
        return await _deliver(request, _frames(events, azure=False), fault)
    body_bytes = replies.encode(replies.openai_chat(stamp, text, tokens), azure=False)
    return await _deliver(request, body_bytes, fault)


async def openai_models(request: web.Request) -> web.StreamResponse:
    """`GET /v1/models`."""
    rejection = _openai_rejection(request, request.app[EMULATOR_STATE])
    return rejection or json_response(replies.openai_models())


async def not_found(request: web.Request) -> web.StreamResponse:
    """Any other path or method: Azure's bare 404."""
    return json_response(azure_error("404", RESOURCE_NOT_FOUND), 404)
