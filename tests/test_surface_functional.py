"""The whole API surface: each OpenAI endpoint to its Azure route, and what Azure lacks."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from azproxy.emulator import EmulatorState

from .support import KEY, Gateway, GatewayFactory, auth


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/moderations"),
        ("POST", "/moderations"),
        ("POST", "/v1/images/variations"),
        ("POST", "/v1/uploads"),
        ("POST", "/v1/uploads/upload_1/parts"),
        ("GET", "/v1/assistants"),
        ("POST", "/v1/threads/t1/runs"),
    ],
)
async def test_apis_azure_lacks_are_refused_clearly(
    gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState, method: str, path: str
) -> None:
    async with http.request(method, gateway.url(path), json={}, headers=auth()) as resp:
        assert resp.status == 404
        error = (await resp.json())["error"]
    assert error["code"] == "unsupported_on_azure"
    assert "Azure OpenAI does not offer" in error["message"]
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("path", "body", "azure_path", "query"),
    [
        (
            "/v1/images/generations",
            {"model": "dall-e-3", "prompt": "a cat"},
            "/openai/deployments/dall-e-3/images/generations",
            {"api-version": "2024-10-21"},
        ),
        (
            "/v1/audio/speech",
            {"model": "tts-1", "input": "hello", "voice": "alloy"},
            "/openai/deployments/tts-1/audio/speech",
            {"api-version": "2024-10-21"},
        ),
    ],
)
async def test_json_deployment_operations_reach_their_classic_route(
    gateway: Gateway,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
    path: str,
    body: dict[str, str],
    azure_path: str,
    query: dict[str, str],
) -> None:
    raw = orjson.dumps(body)
    headers = {**auth(), "Content-Type": "application/json"}
    async with http.post(gateway.url(path), data=raw, headers=headers) as resp:
        assert resp.status == 200
        await resp.read()
    received = emulator.last_request
    assert (received.path, received.query, received.body) == (azure_path, query, raw)
    assert received.headers["api-key"] == KEY


async def test_v1_upstream_rewrites_model_to_deployment(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    gateway = await start_gateway(
        AZURE_OPENAI_APIVERSION="v1", AZURE_OPENAI_MODEL_MAPPER="gpt-4o=prod-4o"
    )
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    async with http.post(gateway.url("/v1/chat/completions"), json=body, headers=auth()) as r:
        assert r.status == 200
    received = emulator.last_request
    assert received.path == "/openai/v1/chat/completions"
    assert received.query == {}
    assert orjson.loads(received.body) == {**body, "model": "prod-4o"}
    # Legacy completions have no v1 route: they stay on the classic one.
    legacy = {"model": "gpt-4o", "prompt": "x"}
    async with http.post(gateway.url("/v1/completions"), json=legacy, headers=auth()) as r:
        assert r.status == 200
    assert emulator.last_request.path == "/openai/deployments/prod-4o/completions"
    assert emulator.last_request.query == {"api-version": "2024-10-21"}


@pytest.mark.parametrize(
    ("method", "path", "azure_path", "query"),
    [
        ("GET", "/v1/files?limit=2", "/openai/v1/files", {"limit": "2"}),
        ("GET", "/v1/files/file-1", "/openai/v1/files/file-1", {}),
        ("DELETE", "/v1/files/file-1", "/openai/v1/files/file-1", {}),
        ("GET", "/v1/fine_tuning/jobs", "/openai/v1/fine_tuning/jobs", {}),
        ("GET", "/v1/vector_stores", "/openai/v1/vector_stores", {}),
        ("GET", "/v1/batches", "/openai/batches", {"api-version": "2024-10-21"}),
        ("GET", "/v1/responses/resp_1", "/openai/v1/responses/resp_1", {}),
        ("DELETE", "/v1/responses/resp_1", "/openai/v1/responses/resp_1", {}),
        ("GET", "/v1/responses/resp_1/input_items", "/openai/v1/responses/resp_1/input_items", {}),
        ("POST", "/v1/responses/resp_1/cancel", "/openai/v1/responses/resp_1/cancel", {}),
        (
            "POST",
            "/v1/batches/b1/cancel",
            "/openai/batches/b1/cancel",
            {"api-version": "2024-10-21"},
        ),
        (
            "GET",
            "/openai/files?api-version=2024-06-01",
            "/openai/files",
            {"api-version": "2024-06-01"},
        ),
        ("GET", "/openai/v1/files", "/openai/v1/files", {}),
    ],
)
async def test_resource_routes(
    gateway: Gateway,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
    method: str,
    path: str,
    azure_path: str,
    query: dict[str, str],
) -> None:
    async with http.request(method, gateway.url(path), headers=auth()) as resp:
        await resp.read()
    received = emulator.last_request
    assert (received.method, received.path, received.query) == (method, azure_path, query)
    assert received.headers["api-key"] == KEY
    assert "Authorization" not in received.headers


async def test_responses_create_goes_to_v1_with_the_deployment_as_model(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_MODEL_MAPPER="gpt-4o=prod-4o")
    body = {"model": "gpt-4o", "input": "hi"}
    async with http.post(gateway.url("/v1/responses"), json=body, headers=auth()) as resp:
        await resp.read()
    received = emulator.last_request
    assert (received.path, received.query) == ("/openai/v1/responses", {})
    assert orjson.loads(received.body) == {"model": "prod-4o", "input": "hi"}


async def test_azure_style_upload_streams_through_without_a_model_field(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_MODEL_MAPPER="whisper=whisper-prod")
    form = aiohttp.FormData()
    form.add_field("file", b"RIFF....WAVE", filename="a.wav", content_type="audio/wav")
    url = gateway.url("/openai/deployments/whisper/audio/transcriptions?api-version=2024-06-01")
    async with http.post(url, data=form, headers={"api-key": KEY}) as resp:
        await resp.read()
    received = emulator.last_request
    assert received.path == "/openai/deployments/whisper-prod/audio/transcriptions"
    assert received.query == {"api-version": "2024-06-01"}
    assert received.body.startswith(b"--")  # the client's multipart body, unchanged
    assert b'filename="a.wav"' in received.body
