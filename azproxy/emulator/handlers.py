"""Handlers: Azure's classic deployment routes, a minimal api.openai.com, and Azure's 404.

Azure checks a request in a fixed order (api-version, key, deployment, body) and only then may
throttle or fail it, so queued faults are consumed only by requests that pass every check.
The reply builders here and in `images`/`audio` are shared with the v1 surface (`v1.py`).
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiohttp import web

from . import audio, images, replies
from .checks import answer, bearer_token, classic_rejection, is_preview
from .checks import not_found as azure_not_found
from .delivery import Payload, deliver_json, deliver_stream, json_response, sse_payload
from .errors import (
    JSON,
    NO_API_KEY,
    SERVER_ERROR,
    UNPARSABLE_BODY,
    incorrect_key,
    invalid_request,
    openai_error,
    openai_rate_limited,
)
from .state import EMULATOR_STATE, EmulatorState, Fault, UploadSummary
from .uploads import FormError, read_body, read_form

__all__ = [
    "FORM_MEDIA",
    "JSON_MEDIA",
    "PREVIEW_ONLY",
    "azure_operation",
    "bearer_token",
    "deployment_media",
    "form_reply",
    "not_found",
    "openai_chat",
    "openai_models",
    "read_object",
    "text_reply",
]

# JSON in: image generation and speech; multipart in: the others.
JSON_MEDIA: dict[str, Callable[[JSON], Payload | web.Response]] = {
    "images/generations": images.generation,
    "audio/speech": audio.speech,
}
FORM_MEDIA = ("images/edits", "audio/transcriptions", "audio/translations")
# Classic routes Azure serves only under a dated preview api-version: gpt-image-1 edits came
# with 2025-04-01-preview. (Speech is GA since 2024-06-01: in the GA specs and docs.)
PREVIEW_ONLY = ("images/edits",)


async def read_object(request: web.Request) -> JSON | None:
    """The body as a JSON object, or None when it is not one."""
    raw = await read_body(request, request.client_max_size)
    try:
        body = orjson.loads(raw) if raw is not None else None
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def unparsable() -> web.Response:
    return json_response(openai_error(UNPARSABLE_BODY), 400)


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


def _embeddings_reply(body: JSON) -> Payload | web.Response:
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
    return Payload(replies.encode(replies.embeddings(texts, as_base64=as_base64), azure=True))


def text_reply(
    operation: str, deployment: str, body: JSON, state: EmulatorState
) -> Payload | web.Response:
    """Chat, legacy completions or embeddings, Azure-shaped (SSE when `stream` is true)."""
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
            return sse_payload(_frames(events, azure=True))
        return Payload(replies.encode(replies.azure_completion(stamp, text, tokens), azure=True))
    stamp = replies.new_stamp("chatcmpl", replies.CHAT_MODEL)
    tokens = replies.chat_prompt_tokens(body)
    if stream:
        events = replies.chat_events(stamp, text, tokens, include_usage=usage, azure=True)
        return sse_payload(_frames(events, azure=True))
    return Payload(replies.encode(replies.azure_chat(stamp, text, tokens), azure=True))


def form_reply(
    operation: str, form: UploadSummary, heads: dict[str, bytes]
) -> Payload | web.Response:
    """The reply to a multipart operation (images/edits, audio/transcriptions|translations)."""
    if operation == "images/edits":
        return images.edit(form)
    task = "transcribe" if operation == "audio/transcriptions" else "translate"
    return audio.transcription(form, heads, task)


async def azure_operation(request: web.Request) -> web.StreamResponse:
    """`POST …/openai/deployments/{deployment}/{chat/completions|completions|embeddings}`."""
    state = request.app[EMULATOR_STATE]
    deployment = request.match_info["deployment"]
    rejection = classic_rejection(request, state, deployment)
    if rejection is not None:
        return rejection
    body = await read_object(request)
    if body is None:
        return unparsable()
    operation = request.match_info["operation"]
    return await answer(request, operation, text_reply(operation, deployment, body, state))


async def deployment_media(request: web.Request) -> web.StreamResponse:
    """`POST …/openai/deployments/{deployment}/{images/…|audio/…}`."""
    state = request.app[EMULATOR_STATE]
    operation = request.match_info["operation"]
    versions = is_preview if operation in PREVIEW_ONLY else None
    rejection = classic_rejection(request, state, request.match_info["deployment"], versions)
    if rejection is not None:
        return rejection
    build = JSON_MEDIA.get(operation)
    if build is not None:
        body = await read_object(request)
        return unparsable() if body is None else await answer(request, operation, build(body))
    try:
        form, heads = await read_form(request)
    except FormError as exc:
        return json_response(invalid_request(str(exc)), 400)
    return await answer(request, operation, form_reply(operation, form, heads))


def _failure(fault: Fault, body: JSON) -> web.Response:
    headers: dict[str, str] = {}
    if fault.status == 429:
        headers = {
            "retry-after": str(fault.retry_after),
            "retry-after-ms": str(fault.retry_after * 1000),
            "x-ratelimit-remaining-requests": "0",
        }
    return json_response(body, fault.status, headers=headers)


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
    body = await read_object(request)
    if body is None:
        return unparsable()
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
        return await deliver_stream(request, _frames(events, azure=False), fault)
    body_bytes = replies.encode(replies.openai_chat(stamp, text, tokens), azure=False)
    return await deliver_json(request, body_bytes, fault)


async def openai_models(request: web.Request) -> web.StreamResponse:
    """`GET /v1/models`."""
    rejection = _openai_rejection(request, request.app[EMULATOR_STATE])
    return rejection or json_response(replies.openai_models())


async def not_found(request: web.Request) -> web.StreamResponse:
    """Any other path or method: Azure's bare 404."""
    return azure_not_found()
