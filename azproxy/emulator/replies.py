"""Builders of Azure- and OpenAI-shaped success bodies and SSE events.

Pure functions of their arguments (only `new_stamp` reads the clock and the RNG), so the shapes
can be read, and tested, apart from any I/O. Azure serialises keys alphabetically, OpenAI in
declaration order; `encode` takes care of that, the builders only decide content.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

JSON = dict[str, Any]

CHAT_MODEL = "gpt-4o-2024-11-20"
COMPLETIONS_MODEL = "gpt-35-turbo-instruct"
EMBEDDINGS_MODEL = "text-embedding-ada-002"
SYSTEM_FINGERPRINT = "fp_ee1d74bde0"
EMBEDDING_SIZE = 8
DONE = b"data: [DONE]\n\n"

_ID_ALPHABET = string.ascii_letters + string.digits
_WORD = re.compile(r"\s*\S+")


@dataclass(frozen=True)
class Stamp:
    """Identity shared by the body, or by every chunk, of one completion."""

    id: str
    created: int
    model: str


def new_stamp(prefix: str, model: str) -> Stamp:
    """A fresh `chatcmpl-…`/`cmpl-…` id stamped now; ids look like OpenAI's (29 alphanumerics)."""
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(29))
    return Stamp(f"{prefix}-{suffix}", int(time.time()), model)


def default_reply(subject: str) -> str:
    """The demo reply; says where it comes from so nobody mistakes it for a model's answer."""
    return (
        f"Hello from the azproxy Azure emulator ({subject}). "
        "Configure AZURE_OPENAI_ENDPOINT to talk to real Azure."
    )


def words(text: str) -> list[str]:
    """The stream pieces of `text`: one per word, each keeping its leading whitespace."""
    return _WORD.findall(text)


def _text_of(content: object) -> str:
    # Chat content is a string or a list of typed parts; only text parts carry words.
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = (p.get("text") for p in content if isinstance(p, dict))
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def chat_prompt_tokens(body: JSON) -> int:
    """A stable token estimate: one per word plus 3 per message and 3 for the reply priming."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0
    contents = (m.get("content") for m in messages if isinstance(m, dict))
    return sum(3 + len(_text_of(c).split()) for c in contents) + 3


def text_tokens(texts: Iterable[str]) -> int:
    """One token per word, at least one per text, like a coarse tokenizer."""
    return sum(max(1, len(t.split())) for t in texts)


def usage(prompt_tokens: int, completion_tokens: int) -> JSON:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def encode(obj: JSON, *, azure: bool) -> bytes:
    """Compact JSON; alphabetical keys for Azure, as its serializer emits them."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS if azure else 0)


def sse(obj: JSON, *, azure: bool) -> bytes:
    """One SSE event carrying `obj`."""
    return b"data: " + encode(obj, azure=azure) + b"\n\n"


# --- Azure content filter annotations ------------------------------------------------------


def _safe(*categories: str) -> JSON:
    return {c: {"filtered": False, "severity": "safe"} for c in categories}


def _output_filter(*, streamed: bool) -> JSON:
    # Streamed chunks carry the four harm categories; whole bodies add protected material.
    results = _safe("hate", "self_harm", "sexual", "violence")
    if not streamed:
        results["protected_material_code"] = {"filtered": False, "detected": False}
        results["protected_material_text"] = {"filtered": False, "detected": False}
    return results


def prompt_filter_results() -> list[JSON]:
    results = _safe("hate", "self_harm", "sexual", "violence")
    results["jailbreak"] = {"filtered": False, "detected": False}
    return [{"prompt_index": 0, "content_filter_results": results}]


def prompt_filter_event() -> JSON:
    """The first event of every Azure stream: filter results for the prompt, no choices."""
    return {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": prompt_filter_results(),
    }


def _with_usage(events: list[JSON], last: JSON) -> list[JSON]:
    # With include_usage every chunk says "usage": null and one usage-only chunk ends the stream.
    for event in events:
        event["usage"] = None
    return [*events, last]


# --- chat completions ----------------------------------------------------------------------


def azure_chat(stamp: Stamp, text: str, prompt_tokens: int) -> JSON:
    """A non-streamed Azure chat completion."""
    message = {"content": text, "refusal": None, "role": "assistant"}
    choice = {
        "content_filter_results": _output_filter(streamed=False),
        "finish_reason": "stop",
        "index": 0,
        "logprobs": None,
        "message": message,
    }
    return {
        "choices": [choice],
        "created": stamp.created,
        "id": stamp.id,
        "model": stamp.model,
        "object": "chat.completion",
        "prompt_filter_results": prompt_filter_results(),
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "usage": usage(prompt_tokens, len(words(text))),
    }


def _chat_chunk(stamp: Stamp, choices: list[JSON]) -> JSON:
    return {
        "id": stamp.id,
        "object": "chat.completion.chunk",
        "created": stamp.created,
        "model": stamp.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices,
    }


def _delta(delta: JSON, finish_reason: str | None, filters: JSON | None) -> JSON:
    choice: JSON = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    if filters is not None:
        choice["content_filter_results"] = filters
    return choice


def chat_events(
    stamp: Stamp, text: str, prompt_tokens: int, *, include_usage: bool, azure: bool
) -> list[JSON]:
    """The events of a streamed chat completion, without the `[DONE]` terminator.

    Azure opens with the prompt-filter event and annotates every choice with filter results
    (empty on the role and finish chunks); OpenAI has neither.
    """
    empty: JSON | None = {} if azure else None
    filled = _output_filter(streamed=True) if azure else None
    role = {"role": "assistant", "content": "", "refusal": None}
    events = [_chat_chunk(stamp, [_delta(role, None, empty)])]
    events += [_chat_chunk(stamp, [_delta({"content": w}, None, filled)]) for w in words(text)]
    events.append(_chat_chunk(stamp, [_delta({}, "stop", empty)]))
    if azure:
        events.insert(0, prompt_filter_event())
    if not include_usage:
        return events
    return _with_usage(
        events, {**_chat_chunk(stamp, []), "usage": usage(prompt_tokens, len(words(text)))}
    )


def openai_chat(stamp: Stamp, text: str, prompt_tokens: int) -> JSON:
    """A non-streamed api.openai.com chat completion."""
    message: JSON = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    return {
        "id": stamp.id,
        "object": "chat.completion",
        "created": stamp.created,
        "model": stamp.model,
        "choices": [choice],
        "usage": usage(prompt_tokens, len(words(text))),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


# --- legacy completions --------------------------------------------------------------------


def _completion_choice(text: str, finish_reason: str | None, filters: JSON) -> JSON:
    return {
        "text": text,
        "index": 0,
        "finish_reason": finish_reason,
        "logprobs": None,
        "content_filter_results": filters,
    }


def _completion(stamp: Stamp, choices: list[JSON]) -> JSON:
    return {
        "id": stamp.id,
        "object": "text_completion",
        "created": stamp.created,
        "model": stamp.model,
        "choices": choices,
    }


def azure_completion(stamp: Stamp, text: str, prompt_tokens: int) -> JSON:
    """A non-streamed Azure legacy completion."""
    body = _completion(stamp, [_completion_choice(text, "stop", _output_filter(streamed=False))])
    body["usage"] = usage(prompt_tokens, len(words(text)))
    body["prompt_filter_results"] = prompt_filter_results()
    return body


def completion_events(
    stamp: Stamp, text: str, prompt_tokens: int, *, include_usage: bool
) -> list[JSON]:
    """The events of a streamed Azure legacy completion, without `[DONE]`."""
    filled = _output_filter(streamed=True)
    events = [prompt_filter_event()]
    events += [_completion(stamp, [_completion_choice(w, None, filled)]) for w in words(text)]
    events.append(_completion(stamp, [_completion_choice("", "stop", {})]))
    if not include_usage:
        return events
    return _with_usage(
        events, {**_completion(stamp, []), "usage": usage(prompt_tokens, len(words(text)))}
    )


# --- embeddings ----------------------------------------------------------------------------


def embedding_vector(text: str) -> list[float]:
    """`EMBEDDING_SIZE` floats derived from `text` by hashing.

    Each is a multiple of 1/128 in [-1, 1), exactly representable as float32, so the base64
    form (little-endian float32, which the openai SDK requests by default) decodes to the very
    same numbers as the JSON form.
    """
    digest = hashlib.sha256(text.encode()).digest()
    return [(b - 128) / 128 for b in digest[:EMBEDDING_SIZE]]


def embeddings(texts: list[str], *, as_base64: bool) -> JSON:
    """An Azure embeddings list, one vector per input text."""
    data = []
    for index, text in enumerate(texts):
        vector = embedding_vector(text)
        packed = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append(
            {"object": "embedding", "index": index, "embedding": packed if as_base64 else vector}
        )
    tokens = text_tokens(texts)
    return {
        "object": "list",
        "data": data,
        "model": EMBEDDINGS_MODEL,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def openai_models() -> JSON:
    """api.openai.com's model list, reduced to one model."""
    model = {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"}
    return {"object": "list", "data": [model]}
