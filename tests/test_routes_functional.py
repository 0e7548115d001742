"""Each deployment route end to end: what the client gets and exactly what Azure received."""

from __future__ import annotations

import aiohttp
import openai
import orjson
import pytest

from azproxy.emulator import EmulatorState

from .support import KEY, Gateway, GatewayFactory, auth

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("path", "body", "azure_path"),
    [
        ("/v1/chat/completions", CHAT, "/openai/deployments/gpt-4o/chat/completions"),
        ("/chat/completions", CHAT, "/openai/deployments/gpt-4o/chat/completions"),
        (
            "/v1/completions",
            {"model": "davinci", "prompt": "x"},
            "/openai/deployments/davinci/completions",
        ),
        (
            "/v1/embeddings",
            {"model": "ada", "input": "x"},
            "/openai/deployments/ada/embeddings",
        ),
        ("/embeddings", {"model": "ada", "input": "x"}, "/openai/deployments/ada/embeddings"),
        (
            "/v1/engines/text-embedding-ada-002/embeddings",
            {"input": "x"},
            "/openai/deployments/text-embedding-ada-002/embeddings",
        ),
    ],
)
async def test_route_reaches_azure_deployment(
    gateway: Gateway,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
    path: str,
    body: dict[str, object],
    azure_path: str,
) -> None:
    raw = orjson.dumps(body)
    headers = {**auth(), "Content-Type": "application/json", "X-Stainless-Lang": "python"}
    async with http.post(gateway.url(path), data=raw, headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        reply = await resp.json()
    assert reply["object"] in ("chat.completion", "text_completion", "list")
    received = emulator.last_request
    assert received.method == "POST"
    assert received.path == azure_path
    assert received.query == {"api-version": "2024-10-21"}
    assert received.headers["api-key"] == KEY
    assert "Authorization" not in received.headers
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["X-Stainless-Lang"] == "python"
    assert received.body == raw  # forwarded byte for byte


async def test_endpoint_path_prefix_and_api_version_are_kept(
    start_gateway: GatewayFactory,
    azure_url: str,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
) -> None:
    gateway = await start_gateway(
        AZURE_OPENAI_ENDPOINT=f"{azure_url}/apim/front/",
        AZURE_OPENAI_APIVERSION="2025-04-01-preview",
    )
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=auth()) as resp:
        assert resp.status == 200
    assert emulator.last_request.path == "/apim/front/openai/deployments/gpt-4o/chat/completions"
    assert emulator.last_request.query == {"api-version": "2025-04-01-preview"}


@pytest.mark.parametrize(
    ("mapper", "model", "deployment"),
    [
        ("", "gpt-3.5-turbo", "gpt-35-turbo"),
        ("", "gpt-3.5-turbo-0301", "gpt-35-turbo-0301"),
        (" gpt-4 = gpt4-prod , gpt-3.5-turbo=my35", "gpt-4", "gpt4-prod"),
        (" gpt-4 = gpt4-prod , gpt-3.5-turbo=my35", "gpt-3.5-turbo", "my35"),
        ("gpt-4=gpt4-prod", "gpt-4o-mini", "gpt-4o-mini"),
    ],
)
async def test_model_mapper(
    start_gateway: GatewayFactory,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
    mapper: str,
    model: str,
    deployment: str,
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_MODEL_MAPPER=mapper)
    body = {**CHAT, "model": model}
    async with http.post(gateway.url("/v1/chat/completions"), json=body, headers=auth()) as resp:
        assert resp.status == 200
    assert emulator.last_request.path == f"/openai/deployments/{deployment}/chat/completions"


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"Authorization": "Bearer client-key"}, "client-key"),
        ({"api-key": "header-key"}, "header-key"),
        ({"api-key": "header-key", "Authorization": "Bearer bearer-key"}, "header-key"),
        ({"Authorization": "bearer lower-key"}, "lower-key"),
    ],
)
async def test_client_key_forms(
    gateway: Gateway,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
    headers: dict[str, str],
    key: str,
) -> None:
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=headers) as resp:
        assert resp.status == 200
    assert emulator.last_request.headers.getall("api-key") == [key]
    assert "Authorization" not in emulator.last_request.headers


async def test_token_overrides_client_key(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_TOKEN="operator-key")
    for headers in ({"Authorization": "Bearer client-key"}, {"api-key": "x"}, {}):
        async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=headers) as r:
            assert r.status == 200
        assert emulator.last_request.headers.getall("api-key") == ["operator-key"]


async def test_triple_key_sets_endpoint_mapping_and_version(
    start_gateway: GatewayFactory,
    azure_url: str,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
) -> None:
    # The resource template points at the emulator so the resource name shows in its path.
    gateway = await start_gateway(AZURE_OPENAI_RESOURCE_ENDPOINT=f"{azure_url}/{{resource}}")
    key = "myres:gpt-4|gpt4-dep,gpt-4o|gpt4o-dep:secret-123:2025-01-01-preview"
    cases = [("gpt-4o", "gpt4o-dep"), ("gpt-4", "gpt4-dep"), ("unknown-model", "gpt4-dep")]
    for model, deployment in cases:
        body = {**CHAT, "model": model}
        async with http.post(
            gateway.url("/v1/chat/completions"), json=body, headers=auth(key)
        ) as resp:
            assert resp.status == 200
        received = emulator.last_request
        assert received.path == f"/myres/openai/deployments/{deployment}/chat/completions"
        assert received.query == {"api-version": "2025-01-01-preview"}
        assert received.headers["api-key"] == "secret-123"


async def test_triple_key_with_single_deployment(
    start_gateway: GatewayFactory,
    azure_url: str,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_RESOURCE_ENDPOINT=f"{azure_url}/{{resource}}")
    async with http.post(
        gateway.url("/v1/chat/completions"), json=CHAT, headers=auth("res1:only-dep:k")
    ) as resp:
        assert resp.status == 200
    assert emulator.last_request.path == "/res1/openai/deployments/only-dep/chat/completions"
    assert emulator.last_request.query == {"api-version": "2024-10-21"}


@pytest.mark.parametrize(
    "key",
    [
        "evil.com:dep:k",
        "evil.com/x:dep:k",
        "127.0.0.1:dep:k",
        "user@evil:dep:k",
        "res:dep:",
        "res::k",
        "res:a,b:k",
        "res:dep:k:v:extra",
        "only:two",
    ],
)
async def test_malformed_or_hostile_triple_key_is_401_without_upstream_call(
    gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState, key: str
) -> None:
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=auth(key)) as r:
        assert r.status == 401
        error = (await r.json())["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert key not in error["message"]
    assert emulator.requests == []
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=auth()) as r:
        assert r.status == 200


async def test_no_credentials_is_401(
    gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT) as resp:
        assert resp.status == 401
        body = await resp.json()
    assert body["error"]["code"] == "missing_api_key"
    assert body["error"]["type"] == "invalid_request_error"
    assert emulator.requests == []


async def test_deployment_not_found_explains_the_fix(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    emulator.deployments = frozenset({"gpt-35-turbo"})
    gateway = await start_gateway()
    body = {**CHAT, "model": "gpt-4o"}
    async with http.post(gateway.url("/v1/chat/completions"), json=body, headers=auth()) as resp:
        assert resp.status == 404
        error = (await resp.json())["error"]
        assert resp.headers["apim-request-id"]
    assert error["code"] == "DeploymentNotFound"
    assert error["param"] == "model"
    assert "'gpt-4o'" in error["message"]
    assert "AZURE_OPENAI_MODEL_MAPPER=gpt-4o=<your-deployment>" in error["message"]


async def test_azure_errors_pass_through(
    gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState
) -> None:
    emulator.keys = frozenset({"right"})
    async with http.post(
        gateway.url("/v1/chat/completions"), json=CHAT, headers=auth("wrong")
    ) as resp:
        assert resp.status == 401
        body = await resp.json()
    assert body["error"]["code"] == "401"
    assert body["error"]["message"].startswith("Access denied due to invalid subscription key")


async def test_models_list_and_get(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_MODEL_MAPPER="gpt-4o=prod-4o")
    async with http.get(gateway.url("/v1/models"), headers=auth("res:gpt-5|d5:k")) as resp:
        assert resp.status == 200
        listing = await resp.json()
    assert listing["object"] == "list"
    ids = [m["id"] for m in listing["data"]]
    assert ids == ["gpt-3.5-turbo", "gpt-3.5-turbo-0301", "gpt-4o", "gpt-5"]
    for model in listing["data"]:
        assert set(model) == {"id", "object", "created", "owned_by"}
        assert model["object"] == "model"
    async with http.get(gateway.url("/v1/models/gpt-4o")) as resp:
        assert resp.status == 200
        assert (await resp.json())["id"] == "gpt-4o"
    async with http.get(gateway.url("/models/nope")) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("path", ["/health", "/"])
async def test_health_endpoints(gateway: Gateway, http: aiohttp.ClientSession, path: str) -> None:
    async with http.get(gateway.url(path)) as resp:
        assert resp.status == 200
    async with http.head(gateway.url(path)) as resp:
        assert resp.status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/billing/subscription",
        "/v1/dashboard/billing/subscription",
        "/dashboard/billing/usage?start_date=2024-01-01&end_date=2024-02-01",
        "/v1/dashboard/billing/usage",
    ],
)
async def test_billing_mocks(gateway: Gateway, http: aiohttp.ClientSession, path: str) -> None:
    async with http.get(gateway.url(path), headers=auth()) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["object"] in ("billing_subscription", "list")


async def test_unknown_path_and_wrong_method(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with http.post(gateway.url("/v1/nope"), json={}) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "unknown_url"
    async with http.get(gateway.url("/v1/chat/completions")) as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "POST"
        error = (await resp.json())["error"]
    assert error["code"] == "method_not_allowed"
    assert set(error) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    ("query", "api_version"),
    [("?api-version=2025-04-01-preview", "2025-04-01-preview"), ("", "2024-10-21")],
)
async def test_azure_style_path_keeps_client_version_and_maps_alias(
    start_gateway: GatewayFactory,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
    query: str,
    api_version: str,
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_MODEL_MAPPER="gpt-4o=prod-4o")
    url = gateway.url(f"/openai/deployments/gpt-4o/chat/completions{query}")
    async with http.post(url, json={"messages": []}, headers={"api-key": KEY}) as resp:
        assert resp.status == 200
    assert emulator.last_request.path == "/openai/deployments/prod-4o/chat/completions"
    assert emulator.last_request.query == {"api-version": api_version}
    assert emulator.last_request.headers["api-key"] == KEY


async def test_azure_openai_sdk_works_unchanged(gateway: Gateway, emulator: EmulatorState) -> None:
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=str(gateway.url("")), api_key=KEY, api_version="2024-06-01", max_retries=0
    ) as client:
        reply = await client.chat.completions.create(
            model="gpt-35-turbo", messages=[{"role": "user", "content": "hi"}]
        )
        vectors = await client.embeddings.create(model="ada", input=["a", "b"])
    assert "emulator" in (reply.choices[0].message.content or "")
    assert len(vectors.data) == 2
    assert emulator.requests[0].path == "/openai/deployments/gpt-35-turbo/chat/completions"
    assert emulator.requests[0].query == {"api-version": "2024-06-01"}
