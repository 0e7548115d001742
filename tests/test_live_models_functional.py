"""`/v1/models` listing the deployments the resource really has (Azure Resource Manager)."""

from __future__ import annotations

import aiohttp
import pytest
from yarl import URL

from azproxy.emulator import EmulatorState
from azproxy.settings import ConfigError, load_settings

from .support import GatewayFactory, auth

ARM_PATH = (
    "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.CognitiveServices/"
    "accounts/myres/deployments"
)


def live(azure_url: str, **extra: str) -> dict[str, str]:
    return {
        "AZURE_SUBSCRIPTION_ID": "sub-1",
        "AZURE_RESOURCE_GROUP": "rg-1",
        "AZURE_OPENAI_ACCOUNT": "myres",
        "AZURE_MANAGEMENT_ENDPOINT": azure_url,
        "AZURE_AUTHORITY_HOST": azure_url,
        "AZURE_OPENAI_MODEL_MAPPER": "gpt-4o=prod-4o,gpt-4=gone",
        **extra,
    }


async def model_ids(http: aiohttp.ClientSession, url: URL) -> list[str]:
    async with http.get(url, headers=auth()) as resp:
        assert resp.status == 200
        return [m["id"] for m in (await resp.json())["data"]]


async def test_lists_live_deployments_and_the_aliases_that_reach_them(
    start_gateway: GatewayFactory,
    azure_url: str,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
) -> None:
    emulator.deployments = frozenset({"prod-4o", "embed-small"})
    gateway = await start_gateway(**live(azure_url, AZURE_MANAGEMENT_TOKEN="arm-tok"))
    assert await model_ids(http, gateway.url("/v1/models")) == ["embed-small", "gpt-4o", "prod-4o"]
    arm = emulator.last_request
    assert (arm.path, arm.query) == (ARM_PATH, {"api-version": "2024-10-01"})
    assert arm.headers["Authorization"] == "Bearer arm-tok"
    # Cached: a second listing does not ask ARM again.
    asked = len(emulator.requests)
    assert await model_ids(http, gateway.url("/v1/models")) == ["embed-small", "gpt-4o", "prod-4o"]
    assert len(emulator.requests) == asked


async def test_client_credentials_fetch_an_arm_token(
    start_gateway: GatewayFactory,
    azure_url: str,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
) -> None:
    emulator.deployments = frozenset({"prod-4o"})
    env = live(
        azure_url, AZURE_TENANT_ID="t-1", AZURE_CLIENT_ID="app-1", AZURE_CLIENT_SECRET="s3cret"
    )
    gateway = await start_gateway(**env)
    assert await model_ids(http, gateway.url("/v1/models")) == ["gpt-4o", "prod-4o"]
    token_call, arm_call = emulator.requests[-2:]
    assert token_call.path == "/t-1/oauth2/v2.0/token"
    assert b"client_credentials" in token_call.body
    assert arm_call.headers["Authorization"] == "Bearer emulator-arm-token"


async def test_falls_back_to_the_mapper_when_arm_fails(
    start_gateway: GatewayFactory, azure_url: str, http: aiohttp.ClientSession
) -> None:
    env = live(
        azure_url, AZURE_MANAGEMENT_TOKEN="t", AZURE_MANAGEMENT_ENDPOINT="http://127.0.0.1:1"
    )
    gateway = await start_gateway(**env)
    ids = await model_ids(http, gateway.url("/v1/models"))
    assert ids == ["gpt-3.5-turbo", "gpt-3.5-turbo-0301", "gpt-4", "gpt-4o"]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"AZURE_SUBSCRIPTION_ID": "s"}, "AZURE_RESOURCE_GROUP"),
        (
            {
                "AZURE_SUBSCRIPTION_ID": "s",
                "AZURE_RESOURCE_GROUP": "r",
                "AZURE_OPENAI_ACCOUNT": "a",
            },
            "AZURE_MANAGEMENT_TOKEN",
        ),
    ],
)
def test_incomplete_management_settings_fail_at_start(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env)
