"""The Azure emulator over real sockets: checks, bodies, SSE events, headers and faults.

Expected bodies are written out literally (not rebuilt with the emulator's own builders) so a
drift from Azure's wire format shows up here.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import struct
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from azproxy.emulator import (
    EMULATOR_STATE,
    EmulatorState,
    Fault,
    create_emulator_app,
    start_emulator,
)
from azproxy.emulator.__main__ import parse_args

ROOT = Path(__file__).resolve().parents[1]
Client = TestClient[web.Request, web.Application]
JSON = dict[str, Any]

KEY = "test-key"
DEPLOYMENT = "gpt-35-turbo"
VERSION = "2024-10-21"
AUTH = {"api-key": KEY}
REPLY = "Hi there, friend."
BASE = f"/openai/deployments/{DEPLOYMENT}"
CHAT = f"{BASE}/chat/completions?api-version={VERSION}"
COMPLETIONS = f"{BASE}/completions?api-version={VERSION}"
EMBEDDINGS = f"{BASE}/embeddings?api-version={VERSION}"
CHAT_BODY: JSON = {"messages": [{"role": "user", "content": "Say hi"}]}
CHAT_USAGE = {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11}

NOT_FOUND = {"error": {"code": "404", "message": "Resource not found"}}
ACCESS_DENIED = {
    "error": {
        "code": "401",
        "message": "Access denied due to invalid subscription key or wrong API endpoint. Make "
        "sure to provide a valid key for an active subscription and use a correct regional API "
        "endpoint for your resource.",
    }
}
DEPLOYMENT_NOT_FOUND = {
    "error": {
        "code": "DeploymentNotFound",
        "message": "The API deployment for this resource does not exist. If you created the "
        "deployment within the last 5 minutes, please wait a moment and try again.",
    }
}
SAFE = {"filtered": False, "severity": "safe"}
STREAM_FILTER = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
BODY_FILTER = {
    **STREAM_FILTER,
    "protected_material_code": {"filtered": False, "detected": False},
    "protected_material_text": {"filtered": False, "detected": False},
}
PROMPT_FILTER = [
    {
        "prompt_index": 0,
        "content_filter_results": {
            **STREAM_FILTER,
            "jailbreak": {"filtered": False, "detected": False},
        },
    }
]
PROMPT_FILTER_EVENT = {
    "choices": [],
    "created": 0,
    "id": "",
    "model": "",
    "object": "",
    "prompt_filter_results": PROMPT_FILTER,
}


@pytest.fixture
def state() -> EmulatorState:
    return EmulatorState(keys=[KEY], deployments=[DEPLOYMENT], reply=REPLY)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, state: EmulatorState) -> Client:
    return await aiohttp_client(create_emulator_app(state))


def parse_sse(raw: bytes) -> list[Any]:
    """The `data:` payloads of a whole SSE body; asserts the exact framing on the way."""
    assert raw.endswith(b"data: [DONE]\n\n")
    frames = raw.split(b"\n\n")
    assert frames[-1] == b""
    payloads: list[Any] = []
    for frame in frames[:-1]:
        assert frame.startswith(b"data: ")
        data = frame.removeprefix(b"data: ")
        payloads.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return payloads


def assert_identity(body: JSON, prefix: str) -> tuple[str, int]:
    """Check the generated id/created look like Azure's; return them for exact comparisons."""
    assert re.fullmatch(prefix + r"-[A-Za-z0-9]{29}", body["id"])
    assert abs(body["created"] - time.time()) < 60
    return body["id"], body["created"]


def chat_chunk(ident: str, created: int, choice: JSON | None) -> JSON:
    return {
        "choices": [] if choice is None else [choice],
        "created": created,
        "id": ident,
        "model": "gpt-4o-2024-11-20",
        "object": "chat.completion.chunk",
        "system_fingerprint": "fp_ee1d74bde0",
    }


def delta(content: JSON, finish: str | None, filters: JSON) -> JSON:
    return {
        "content_filter_results": filters,
        "delta": content,
        "finish_reason": finish,
        "index": 0,
        "logprobs": None,
    }


def expected_chat_events(ident: str, created: int, *, usage: bool) -> list[Any]:
    role = {"content": "", "refusal": None, "role": "assistant"}
    events: list[JSON] = [
        dict(PROMPT_FILTER_EVENT),
        chat_chunk(ident, created, delta(role, None, {})),
        *(
            chat_chunk(ident, created, delta({"content": w}, None, STREAM_FILTER))
            for w in ["Hi", " there,", " friend."]
        ),
        chat_chunk(ident, created, delta({}, "stop", {})),
    ]
    if not usage:
        return [*events, "[DONE]"]
    tail = {**chat_chunk(ident, created, None), "usage": CHAT_USAGE}
    return [*({**e, "usage": None} for e in events), tail, "[DONE]"]


async def read_event(response: aiohttp.ClientResponse) -> bytes:
    return await response.content.readuntil(b"\n\n")


def payload(frame: bytes) -> Any:
    assert frame.startswith(b"data: ")
    assert frame.endswith(b"\n\n")
    return orjson.loads(frame[6:])


# --- checks, in Azure's order ---------------------------------------------------------------


async def test_missing_api_version_is_resource_not_found(client: Client) -> None:
    # Checked before anything else: no key and an unknown deployment still give this 404.
    resp = await client.post("/openai/deployments/nope/chat/completions", json=CHAT_BODY)
    assert resp.status == 404
    assert await resp.json() == NOT_FOUND


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"api-key": ""},
        {"api-key": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {KEY}"},
    ],
)
async def test_bad_key_is_access_denied(client: Client, headers: dict[str, str]) -> None:
    resp = await client.post(CHAT, json=CHAT_BODY, headers=headers)
    assert resp.status == 401
    assert resp.reason == "PermissionDenied"
    assert await resp.json() == ACCESS_DENIED


@pytest.mark.parametrize("headers", [{"api-key": KEY}, {"Authorization": f"Bearer {KEY}"}])
async def test_key_from_api_key_or_bearer(client: Client, headers: dict[str, str]) -> None:
    resp = await client.post(CHAT, json=CHAT_BODY, headers=headers)
    assert resp.status == 200


async def test_unrestricted_state_accepts_any_key_and_deployment(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await aiohttp_client(create_emulator_app())
    path = "/openai/deployments/whatever/chat/completions?api-version=v"
    assert (await client.post(path, json=CHAT_BODY, headers={"api-key": "x"})).status == 200
    assert (await client.post(path, json=CHAT_BODY)).status == 401


async def test_unknown_deployment(client: Client) -> None:
    path = f"/openai/deployments/gpt-5/chat/completions?api-version={VERSION}"
    resp = await client.post(path, data=b"not even json", headers=AUTH)
    assert resp.status == 404
    assert await resp.json() == DEPLOYMENT_NOT_FOUND


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b""])
async def test_body_must_be_a_json_object(client: Client, data: bytes) -> None:
    resp = await client.post(CHAT, data=data, headers=AUTH)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["message"].startswith("We could not parse the JSON body of your request.")
    assert error | {"message": ""} == {
        "message": "",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


async def test_any_prefix_before_openai(client: Client, state: EmulatorState) -> None:
    resp = await client.post(f"/apim/v2{CHAT}", json=CHAT_BODY, headers=AUTH)
    assert resp.status == 200
    assert state.last_request.path == f"/apim/v2{BASE}/chat/completions"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{BASE}/images/variations?api-version={VERSION}"),
        ("GET", CHAT),
        ("POST", "/"),
        ("GET", "/v1/nothing"),
    ],
)
async def test_unknown_path_or_method(client: Client, method: str, path: str) -> None:
    resp = await client.request(method, path, json=CHAT_BODY, headers=AUTH)
    assert resp.status == 404
    assert await resp.json() == NOT_FOUND


# --- replies --------------------------------------------------------------------------------


async def test_chat_completion_body(client: Client) -> None:
    resp = await client.post(CHAT, json=CHAT_BODY, headers=AUTH)
    assert resp.status == 200
    assert resp.content_type == "application/json"
    raw = await resp.read()
    body = orjson.loads(raw)
    assert raw == orjson.dumps(body, option=orjson.OPT_SORT_KEYS)  # Azure orders keys
    ident, created = assert_identity(body, "chatcmpl")
    assert body == {
        "choices": [
            {
                "content_filter_results": BODY_FILTER,
                "finish_reason": "stop",
                "index": 0,
                "logprobs": None,
                "message": {"content": REPLY, "refusal": None, "role": "assistant"},
            }
        ],
        "created": created,
        "id": ident,
        "model": "gpt-4o-2024-11-20",
        "object": "chat.completion",
        "prompt_filter_results": PROMPT_FILTER,
        "system_fingerprint": "fp_ee1d74bde0",
        "usage": CHAT_USAGE,
    }


async def test_default_reply_names_the_deployment(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_emulator_app())
    resp = await client.post(CHAT, json=CHAT_BODY, headers=AUTH)
    message = (await resp.json())["choices"][0]["message"]["content"]
    assert message == (
        "Hello from the azproxy Azure emulator (deployment gpt-35-turbo). "
        "Configure AZURE_OPENAI_ENDPOINT to talk to real Azure."
    )


async def test_azure_response_headers(client: Client) -> None:
    resp = await client.post(CHAT, json=CHAT_BODY, headers=AUTH)
    apim_id = resp.headers["apim-request-id"]
    uuid.UUID(apim_id)
    uuid.UUID(resp.headers["x-request-id"])
    assert resp.headers["x-ms-client-request-id"] == apim_id
    assert resp.headers["x-ms-region"] == "East US"
    assert int(resp.headers["x-ratelimit-remaining-requests"]) > 0
    assert int(resp.headers["x-ratelimit-remaining-tokens"]) > 0

    sent = {**AUTH, "x-ms-client-request-id": "client-id-1"}
    resp = await client.post(CHAT, json=CHAT_BODY, headers=sent)
    assert resp.headers["x-ms-client-request-id"] == "client-id-1"
    # Errors carry them too, as Azure's APIM adds them to everything.
    resp = await client.post(CHAT, json=CHAT_BODY)
    assert "apim-request-id" in resp.headers


@pytest.mark.parametrize("usage", [False, True])
async def test_chat_stream_events(client: Client, state: EmulatorState, usage: bool) -> None:
    body = {**CHAT_BODY, "stream": True, "stream_options": {"include_usage": usage}}
    resp = await client.post(CHAT, json=body, headers=AUTH)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert resp.headers["x-accel-buffering"] == "no"
    assert resp.headers["Transfer-Encoding"] == "chunked"
    events = parse_sse(await resp.read())
    ident, created = assert_identity(events[1], "chatcmpl")
    assert events == expected_chat_events(ident, created, usage=usage)
    assert state.completed_streams == 1
    assert state.aborted_streams == 0


async def test_each_event_is_its_own_write(client: Client) -> None:
    resp = await client.post(CHAT, json={**CHAT_BODY, "stream": True}, headers=AUTH)
    chunks, pending = [], b""
    async for data, end_of_http_chunk in resp.content.iter_chunks():
        pending += data
        if end_of_http_chunk and pending:
            chunks.append(pending)
            pending = b""
    assert len(chunks) == 7
    assert all(c.startswith(b"data: ") and c.endswith(b"\n\n") for c in chunks)
    assert chunks[-1] == b"data: [DONE]\n\n"


async def test_chunk_interval_spaces_events(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await aiohttp_client(create_emulator_app(EmulatorState(chunk_interval=0.05)))
    started = time.monotonic()
    resp = await client.post(CHAT, json={**CHAT_BODY, "stream": True}, headers=AUTH)
    events = parse_sse(await resp.read())
    # At least one interval between each pair of consecutive events.
    assert time.monotonic() - started >= 0.05 * (len(events) - 1)


async def test_completions(client: Client) -> None:
    resp = await client.post(COMPLETIONS, json={"prompt": "Say hi"}, headers=AUTH)
    body = await resp.json()
    ident, created = assert_identity(body, "cmpl")
    assert body == {
        "choices": [
            {
                "content_filter_results": BODY_FILTER,
                "finish_reason": "stop",
                "index": 0,
                "logprobs": None,
                "text": REPLY,
            }
        ],
        "created": created,
        "id": ident,
        "model": "gpt-35-turbo-instruct",
        "object": "text_completion",
        "prompt_filter_results": PROMPT_FILTER,
        "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
    }


async def test_completions_stream(client: Client) -> None:
    body = {"prompt": ["Say", "hi"], "stream": True, "stream_options": {"include_usage": True}}
    resp = await client.post(COMPLETIONS, json=body, headers=AUTH)
    events = parse_sse(await resp.read())
    ident, created = assert_identity(events[1], "cmpl")

    def chunk(text: str, finish: str | None, filters: JSON) -> JSON:
        choice = {
            "content_filter_results": filters,
            "finish_reason": finish,
            "index": 0,
            "logprobs": None,
            "text": text,
        }
        return {
            "choices": [choice],
            "created": created,
            "id": ident,
            "model": "gpt-35-turbo-instruct",
            "object": "text_completion",
            "usage": None,
        }

    usage = {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert events == [
        {**PROMPT_FILTER_EVENT, "usage": None},
        chunk("Hi", None, STREAM_FILTER),
        chunk(" there,", None, STREAM_FILTER),
        chunk(" friend.", None, STREAM_FILTER),
        chunk("", "stop", {}),
        {**chunk("", None, {}), "choices": [], "usage": usage},
        "[DONE]",
    ]


async def test_embeddings(client: Client) -> None:
    resp = await client.post(EMBEDDINGS, json={"input": ["a b", "c", [1, 2, 3]]}, headers=AUTH)
    body = await resp.json()
    vectors = [item.pop("embedding") for item in body["data"]]
    assert body == {
        "data": [{"index": i, "object": "embedding"} for i in range(3)],
        "model": "text-embedding-ada-002",
        "object": "list",
        "usage": {"prompt_tokens": 6, "total_tokens": 6},
    }
    assert all(len(v) == 8 and all(-1 <= x < 1 for x in v) for v in vectors)
    assert len({tuple(v) for v in vectors}) == 3

    # Deterministic: the same text always gives the same vector, alone or in a list.
    again = await client.post(EMBEDDINGS, json={"input": "c"}, headers=AUTH)
    assert (await again.json())["data"][0]["embedding"] == vectors[1]


async def test_embeddings_base64(client: Client) -> None:
    plain = await client.post(EMBEDDINGS, json={"input": "c"}, headers=AUTH)
    vector = (await plain.json())["data"][0]["embedding"]
    body = {"input": "c", "encoding_format": "base64"}
    packed = (await (await client.post(EMBEDDINGS, json=body, headers=AUTH)).json())["data"]
    assert list(struct.unpack("<8f", base64.b64decode(packed[0]["embedding"]))) == vector


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'input' is a required property"),
        ({"input": [{"x": 1}]}, "'$.input' is invalid."),
        ({"input": []}, "'$.input' is invalid."),
    ],
)
async def test_embeddings_bad_input(client: Client, body: JSON, message: str) -> None:
    resp = await client.post(EMBEDDINGS, json=body, headers=AUTH)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["message"].startswith(message)
    assert error["type"] == "invalid_request_error"


# --- recording ------------------------------------------------------------------------------


async def test_every_request_is_recorded_before_checks(
    client: Client, state: EmulatorState
) -> None:
    with pytest.raises(LookupError):
        state.last_request  # noqa: B018
    await client.post(f"/x%2Fy{CHAT}&api-version=later", data=b"raw", headers={"X-Trace": "1"})
    await client.get("/nowhere?a=1")
    first, second = state.requests
    assert first.method == "POST"
    assert first.path == f"/x%2Fy{BASE}/chat/completions"
    assert first.query == {"api-version": "later"}
    assert first.headers["X-Trace"] == "1"
    assert first.body == b"raw"
    assert (second.method, second.path, second.query, second.body) == (
        "GET",
        "/nowhere",
        {"a": "1"},
        b"",
    )
    assert state.last_request is second


# --- faults ---------------------------------------------------------------------------------


async def test_fault_429(client: Client, state: EmulatorState) -> None:
    state.add_fault(Fault("status", status=429, retry_after=7))
    resp = await client.post(EMBEDDINGS, json={"input": "x"}, headers=AUTH)
    assert resp.status == 429
    assert resp.headers["retry-after"] == "7"
    assert resp.headers["retry-after-ms"] == "7000"
    assert resp.headers["x-ratelimit-remaining-requests"] == "0"
    assert await resp.json() == {
        "error": {
            "code": "429",
            "message": "Requests to the Embeddings_Create Operation under Azure OpenAI API "
            "version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 "
            "pricing tier. Please retry after 7 seconds. Please go here: "
            "https://aka.ms/oai/quotaincrease if you would like to further increase the "
            "default rate limit.",
        }
    }


@pytest.mark.parametrize("status", [500, 503])
async def test_fault_server_error(client: Client, state: EmulatorState, status: int) -> None:
    state.add_fault(Fault("status", status=status))
    resp = await client.post(CHAT, json={**CHAT_BODY, "stream": True}, headers=AUTH)
    assert resp.status == status
    assert await resp.json() == {
        "error": {
            "code": "InternalServerError",
            "message": "The server had an error while processing your request. Sorry about that!",
        }
    }


async def test_fault_is_consumed_once_by_a_valid_request(
    client: Client, state: EmulatorState
) -> None:
    state.add_fault(Fault("status", status=429))
    assert (await client.post(CHAT, json=CHAT_BODY)).status == 401
    assert (await client.post(CHAT, data=b"{", headers=AUTH)).status == 400
    assert len(state.faults) == 1
    assert (await client.post(CHAT, json=CHAT_BODY, headers=AUTH)).status == 429
    assert (await client.post(CHAT, json=CHAT_BODY, headers=AUTH)).status == 200
    assert not state.faults


async def test_slow_first_byte_delays_headers(client: Client, state: EmulatorState) -> None:
    state.add_fault(Fault("slow_first_byte", delay=30))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await client.post(CHAT, json={**CHAT_BODY, "stream": True}, headers=AUTH)
    # Leaving during the delay counts as leaving the stream.
    await asyncio.wait_for(state.aborted.wait(), 5)

    state.add_fault(Fault("slow_first_byte", delay=0.1))
    started = time.monotonic()
    resp = await client.post(CHAT, json=CHAT_BODY, headers=AUTH)
    assert time.monotonic() - started >= 0.1
    assert (await resp.json())["choices"][0]["message"]["content"] == REPLY


async def test_hold_releases_the_rest_of_the_stream(client: Client, state: EmulatorState) -> None:
    release = asyncio.Event()
    state.add_fault(Fault("hold", after_chunks=2, release=release))
    resp = await client.post(CHAT, json={**CHAT_BODY, "stream": True}, headers=AUTH)
    assert payload(await read_event(resp)) == PROMPT_FILTER_EVENT
    second = await read_event(resp)
    assert payload(second)["choices"][0]["delta"]["role"] == "assistant"
    assert not resp.content.at_eof()
    assert state.completed_streams == 0
    release.set()
    rest = await resp.read()
    assert parse_sse(rest)[-2]["choices"][0]["finish_reason"] == "stop"
    assert len(parse_sse(second + rest)) == 6
    assert state.completed_streams == 1


async def test_hold_delays_a_json_reply(client: Client, state: EmulatorState) -> None:
    release = asyncio.Event()
    state.add_fault(Fault("hold", release=release))
    pending = asyncio.ensure_future(client.post(CHAT, json=CHAT_BODY, headers=AUTH))
    done, _ = await asyncio.wait({pending}, timeout=0.2)
    assert not done
    release.set()
    assert (await pending).status == 200


async def test_stall_before_a_json_reply(client: Client, state: EmulatorState) -> None:
    state.add_fault(Fault("stall"))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await client.post(CHAT, json=CHAT_BODY, headers=AUTH)
    assert state.aborted_streams == 0  # not a stream


def test_hold_needs_a_release_event() -> None:
    with pytest.raises(ValueError, match="release"):
        Fault("hold")


async def test_reset_breaks_the_stream(client: Client, state: EmulatorState) -> None:
    state.add_fault(Fault("reset", after_chunks=3))
    resp = await client.post(CHAT, json={**CHAT_BODY, "stream": True}, headers=AUTH)
    assert resp.status == 200
    for _ in range(3):
        await read_event(resp)
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
    assert (state.completed_streams, state.aborted_streams) == (0, 0)


async def test_reset_before_a_json_reply(client: Client, state: EmulatorState) -> None:
    state.add_fault(Fault("reset"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.post(CHAT, json=CHAT_BODY, headers=AUTH)
    assert (await client.post(CHAT, json=CHAT_BODY, headers=AUTH)).status == 200


async def test_stall_goes_silent_until_the_client_leaves(
    client: Client, state: EmulatorState
) -> None:
    state.add_fault(Fault("stall", after_chunks=1))
    resp = await client.post(CHAT, json={**CHAT_BODY, "stream": True}, headers=AUTH)
    assert payload(await read_event(resp)) == PROMPT_FILTER_EVENT
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await read_event(resp)
    resp.close()
    await asyncio.wait_for(state.aborted.wait(), 5)
    assert (state.completed_streams, state.aborted_streams) == (0, 1)


async def test_client_leaving_mid_stream_is_counted(client: Client, state: EmulatorState) -> None:
    state.add_fault(Fault("hold", after_chunks=1, release=asyncio.Event()))
    resp = await client.post(CHAT, json={**CHAT_BODY, "stream": True}, headers=AUTH)
    await read_event(resp)
    resp.close()
    await asyncio.wait_for(state.aborted.wait(), 5)
    assert (state.completed_streams, state.aborted_streams) == (0, 1)


async def test_write_error_counts_as_abort_without_handler_cancellation() -> None:
    # Production servers may run without handler_cancellation: then the next write fails.
    state = EmulatorState(chunk_interval=0.02, reply=" ".join(["word"] * 500))
    runner = web.AppRunner(create_emulator_app(state), handler_cancellation=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}{CHAT}"
        async with aiohttp.ClientSession() as session:
            resp = await session.post(url, json={**CHAT_BODY, "stream": True}, headers=AUTH)
            await read_event(resp)
            resp.close()
            await asyncio.wait_for(state.aborted.wait(), 5)
    finally:
        await runner.cleanup()
    assert (state.completed_streams, state.aborted_streams) == (0, 1)


# --- OpenAI-style upstream ------------------------------------------------------------------


async def test_openai_models(client: Client) -> None:
    resp = await client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    assert await resp.json() == {
        "object": "list",
        "data": [{"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"}],
    }
    assert "apim-request-id" not in resp.headers
    assert "x-request-id" in resp.headers


@pytest.mark.parametrize("headers", [{}, {"api-key": KEY}, {"Authorization": "Bearer  "}])
async def test_openai_requires_bearer(client: Client, headers: dict[str, str]) -> None:
    resp = await client.post("/v1/chat/completions", json=CHAT_BODY, headers=headers)
    assert resp.status == 401
    error = (await resp.json())["error"]
    assert error["message"].startswith("You didn't provide an API key.")
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, None)


async def test_openai_rejects_unknown_key(client: Client) -> None:
    headers = {"Authorization": "Bearer sk-wrong-key-1234"}
    resp = await client.post("/v1/chat/completions", json=CHAT_BODY, headers=headers)
    assert resp.status == 401
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_api_key"
    assert error["message"].startswith("Incorrect API key provided: sk-**********1234.")


async def test_openai_chat(client: Client, state: EmulatorState) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {**CHAT_BODY, "model": "gpt-4o-mini"}
    resp = await client.post("/v1/chat/completions", json=body, headers=headers)
    reply = await resp.json()
    ident, created = assert_identity(reply, "chatcmpl")
    assert reply == {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": REPLY,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": CHAT_USAGE,
        "service_tier": "default",
        "system_fingerprint": "fp_ee1d74bde0",
    }
    assert state.last_request.headers["Authorization"] == f"Bearer {KEY}"


async def test_openai_chat_stream(client: Client) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {**CHAT_BODY, "model": "gpt-4o", "stream": True, "stream_options": {"include_usage": 1}}
    resp = await client.post("/v1/chat/completions", json=body, headers=headers)
    assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    events = parse_sse(await resp.read())
    ident, created = assert_identity(events[0], "chatcmpl")

    def chunk(choice: JSON) -> JSON:
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": "gpt-4o",
            "system_fingerprint": "fp_ee1d74bde0",
            "choices": [choice],
        }

    def choice(content: JSON, finish: str | None = None) -> JSON:
        return {"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}

    # include_usage must be the boolean true; 1 does not count, so no usage chunk.
    assert events == [
        chunk(choice({"role": "assistant", "content": "", "refusal": None})),
        chunk(choice({"content": "Hi"})),
        chunk(choice({"content": " there,"})),
        chunk(choice({"content": " friend."})),
        chunk(choice({}, "stop")),
        "[DONE]",
    ]


async def test_openai_chat_needs_a_model(client: Client) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    resp = await client.post("/v1/chat/completions", json=CHAT_BODY, headers=headers)
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == "you must provide a model parameter"


async def test_openai_fault_429(client: Client, state: EmulatorState) -> None:
    state.add_fault(Fault("status", status=429, retry_after=2))
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {**CHAT_BODY, "model": "gpt-4o"}
    resp = await client.post("/v1/chat/completions", json=body, headers=headers)
    assert resp.status == 429
    assert resp.headers["retry-after-ms"] == "2000"
    assert (await resp.json())["error"]["code"] == "rate_limit_exceeded"


# --- serving --------------------------------------------------------------------------------


async def test_start_emulator_serves_on_a_free_port() -> None:
    state = EmulatorState(reply="ok")
    runner, url = await start_emulator(state=state)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        assert runner.app[EMULATOR_STATE] is state
        async with (
            aiohttp.ClientSession() as session,
            session.post(url + CHAT, json=CHAT_BODY, headers=AUTH) as resp,
        ):
            assert (await resp.json())["choices"][0]["message"]["content"] == "ok"
    finally:
        await runner.cleanup()


def test_parse_args() -> None:
    args = parse_args(["--keys", "a, b,", "--deployments", "", "--chunk-interval", "0.5"])
    assert (args.host, args.port) == ("127.0.0.1", 8081)
    assert args.keys == frozenset({"a", "b"})
    assert args.deployments is None
    assert args.chunk_interval == 0.5


async def test_module_runs_standalone() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "azproxy.emulator",
        "--port",
        "0",
        "--keys",
        KEY,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(20):
            line = (await proc.stderr.readline()).decode()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        async with (
            aiohttp.ClientSession() as session,
            session.post(match[1] + CHAT, json=CHAT_BODY, headers={"api-key": "nope"}) as resp,
        ):
            assert resp.status == 401
    finally:
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            assert await proc.wait() == 0
