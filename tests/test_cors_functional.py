"""CORS for browser UIs: preflights answered locally, CORS headers on every kind of response."""

from __future__ import annotations

import aiohttp
import pytest

from azproxy.emulator import EmulatorState

from .support import Gateway, GatewayFactory, auth

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
ORIGIN = "https://ui.example"
# What the openai SDKs (and UIs built on them) ask a preflight to allow.
REQUESTED_HEADERS = (
    "authorization",
    "content-type",
    "api-key",
    "openai-organization",
    "openai-project",
    "x-stainless-os",
    "x-stainless-retry-count",
)
EXPOSED = ("x-request-id", "retry-after", "x-ratelimit-remaining-requests")


def preflight_headers(origin: str = ORIGIN, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": ", ".join(REQUESTED_HEADERS),
    }


def header_set(value: str) -> set[str]:
    """A comma-separated header list, lower-cased (header names compare case-insensitively)."""
    return {item.strip().lower() for item in value.split(",") if item.strip()}


def assert_cors_response(resp: aiohttp.ClientResponse, origin: str = ORIGIN) -> None:
    assert resp.headers["Access-Control-Allow-Origin"] in (origin, "*")
    exposed = header_set(resp.headers.get("Access-Control-Expose-Headers", ""))
    assert exposed >= set(EXPOSED)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/models", "/v1/whatever"])
async def test_preflight_allows_every_requested_header(
    gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState, path: str
) -> None:
    async with http.options(gateway.url(path), headers=preflight_headers()) as resp:
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] in (ORIGIN, "*")
        methods = header_set(resp.headers["Access-Control-Allow-Methods"])
        assert "post" in methods or "*" in methods
        allowed = header_set(resp.headers["Access-Control-Allow-Headers"])
        assert "*" in allowed or allowed >= set(REQUESTED_HEADERS)
    assert emulator.requests == []


async def test_preflight_for_get_on_models(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with http.options(
        gateway.url("/v1/models"), headers=preflight_headers(method="GET")
    ) as resp:
        assert resp.status == 200
        assert "get" in header_set(resp.headers["Access-Control-Allow-Methods"])


async def test_post_carries_cors_headers(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    headers = {**auth(), "Origin": ORIGIN}
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=headers) as resp:
        assert resp.status == 200
        assert_cors_response(resp)
        assert resp.headers["x-request-id"]
        await resp.read()


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("POST", "/v1/chat/completions", {}, 401),
        ("POST", "/v1/whatever", auth(), 404),
        ("GET", "/v1/chat/completions", auth(), 405),
        ("DELETE", "/v1/models", auth(), 405),
    ],
)
async def test_error_responses_carry_cors_headers(
    gateway: Gateway,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
) -> None:
    async with http.request(
        method, gateway.url(path), json=CHAT, headers={**headers, "Origin": ORIGIN}
    ) as resp:
        assert resp.status == status
        assert_cors_response(resp)
        assert "error" in await resp.json()


async def test_upstream_error_carries_cors_headers(
    gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    emulator.keys = frozenset({"right"})
    headers = {**auth("wrong"), "Origin": ORIGIN}
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=headers) as resp:
        assert resp.status == 401
        assert_cors_response(resp)
        await resp.read()


async def test_stream_carries_cors_headers(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    headers = {**auth(), "Origin": ORIGIN}
    body = {**CHAT, "stream": True}
    async with http.post(gateway.url("/v1/chat/completions"), json=body, headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        assert_cors_response(resp)
        text = await resp.text()
    assert text.endswith("data: [DONE]\n\n")


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/v1/chat/completions", auth()),
        ("POST", "/v1/chat/completions", {}),
        ("GET", "/v1/models", {}),
        ("GET", "/v1/nope", {}),
        ("GET", "/health", {}),
    ],
)
async def test_allow_any_origin_without_origin_header(
    gateway: Gateway,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    headers: dict[str, str],
) -> None:
    # The original proxies sent `*` on every response, with or without Origin.
    async with http.request(method, gateway.url(path), json=CHAT, headers=headers) as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        await resp.read()


async def test_allow_any_origin_on_stream_without_origin_header(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    body = {**CHAT, "stream": True}
    async with http.post(gateway.url("/v1/chat/completions"), json=body, headers=auth()) as resp:
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        await resp.read()


async def test_restricted_origins_echo_an_allowed_origin(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_PROXY_CORS_ORIGINS="https://a.example")
    allowed = "https://a.example"
    async with http.options(
        gateway.url("/v1/chat/completions"), headers=preflight_headers(allowed)
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == allowed
    headers = {**auth(), "Origin": allowed}
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == allowed
        assert_cors_response(resp, allowed)
        await resp.read()


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/whatever"])
async def test_restricted_origins_refuse_another_origin(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, emulator: EmulatorState, path: str
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_PROXY_CORS_ORIGINS="https://a.example")
    other = "https://evil.example"
    async with http.options(gateway.url(path), headers=preflight_headers(other)) as resp:
        assert resp.status == 403
        assert "Access-Control-Allow-Origin" not in resp.headers
        assert resp.content_type == "application/json"
        error = (await resp.json())["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert emulator.requests == []
    headers = {**auth(), "Origin": other}
    async with http.post(gateway.url(path), json=CHAT, headers=headers) as resp:
        assert "Access-Control-Allow-Origin" not in resp.headers
        await resp.read()
    async with http.post(gateway.url(path), json=CHAT, headers=auth()) as resp:
        # No `*` fallback once origins are restricted.
        assert "Access-Control-Allow-Origin" not in resp.headers
        await resp.read()


@pytest.mark.parametrize("allowed", ["*", ORIGIN])
async def test_an_answer_to_a_browser_varies_by_origin_and_one_to_a_script_does_not(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, allowed: str
) -> None:
    """A shared cache must not serve one origin's answer (which names it) to another."""
    gateway = await start_gateway(AZURE_OPENAI_PROXY_CORS_ORIGINS=allowed)
    url = gateway.url("/v1/chat/completions")
    async with http.post(url, json=CHAT, headers={**auth(), "Origin": ORIGIN}) as resp:
        assert resp.status == 200
        assert resp.headers.getall("Vary") == ["Origin"]
        assert_cors_response(resp)
        await resp.read()
    async with http.post(url, json=CHAT, headers=auth()) as resp:
        assert resp.status == 200
        assert "Vary" not in resp.headers
        assert "Access-Control-Expose-Headers" not in resp.headers
        await resp.read()
