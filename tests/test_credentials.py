"""Credentials: header precedence, the operator token, triple keys and the SSRF guard."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from azproxy.credentials import (
    Credentials,
    client_key,
    parse_triple_key,
    resolve_credentials,
)
from azproxy.errors import AuthenticationFailed
from azproxy.mapper import build_mapping

ENDPOINT = "https://configured.openai.azure.com"
TEMPLATE = "https://{resource}.openai.azure.com"
SECRET = "sk-Secret4242xyz"
MAPPING = build_mapping("gpt-4=gpt4-prod")


def resolve(
    client: str | None,
    *,
    token: str | None = None,
    endpoint: str | None = ENDPOINT,
    mapping: Mapping[str, str] = MAPPING,
    resource_endpoint: str = TEMPLATE,
) -> Credentials:
    return resolve_credentials(
        token=token,
        client=client,
        endpoint=endpoint,
        mapping=mapping,
        resource_endpoint=resource_endpoint,
    )


# Which key the client sent


@pytest.mark.parametrize(
    ("api_key", "authorization", "expected"),
    [
        ("from-header", None, "from-header"),
        ("from-header", "Bearer from-bearer", "from-header"),
        (" from-header ", None, "from-header"),
        (None, "Bearer from-bearer", "from-bearer"),
        (None, "bearer from-bearer", "from-bearer"),
        (None, "BEARER from-bearer", "from-bearer"),
        (None, "  Bearer   from-bearer  ", "from-bearer"),
        ("", "Bearer from-bearer", "from-bearer"),
        ("   ", "Bearer from-bearer", "from-bearer"),
        (None, "Bearer res:dep:key", "res:dep:key"),
    ],
)
def test_client_key(api_key: str | None, authorization: str | None, expected: str) -> None:
    assert client_key(api_key, authorization) == expected


@pytest.mark.parametrize(
    ("api_key", "authorization"),
    [
        (None, None),
        ("", ""),
        (None, "Bearer"),
        (None, "Bearer   "),
        (None, "Basic dXNlcjpwYXNz"),
        (None, "from-bearer"),
        (None, "Token from-bearer"),
    ],
)
def test_client_key_absent(api_key: str | None, authorization: str | None) -> None:
    assert client_key(api_key, authorization) is None


# Precedence


def test_plain_client_key_uses_the_configured_endpoint_and_mapping() -> None:
    credentials = resolve("client-key")
    assert credentials.key == "client-key"
    assert credentials.endpoint == ENDPOINT
    assert dict(credentials.mapping) == dict(MAPPING)
    assert credentials.fallback_deployment is None
    assert credentials.api_version is None


@pytest.mark.parametrize("client", [None, "client-key", f"evil:dep:{SECRET}", "bad:triple"])
def test_token_wins_over_any_client_key(client: str | None) -> None:
    credentials = resolve(client, token="operator-token")
    assert credentials.key == "operator-token"
    assert credentials.endpoint == ENDPOINT
    assert dict(credentials.mapping) == dict(MAPPING)
    assert credentials.fallback_deployment is None
    assert credentials.api_version is None
    assert credentials.deployment_for("gpt-4") == "gpt4-prod"


@pytest.mark.parametrize("client", [None, ""])
def test_no_credentials(client: str | None) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        resolve(client)
    assert info.value.status == 401
    assert info.value.code == "missing_api_key"


def test_no_endpoint_configured() -> None:
    with pytest.raises(AuthenticationFailed) as info:
        resolve("client-key", endpoint=None)
    assert info.value.status == 401
    assert "AZURE_OPENAI_ENDPOINT" in info.value.message


# Deployments


@pytest.mark.parametrize(
    ("model", "deployment"),
    [
        ("gpt-4", "gpt4-prod"),
        ("gpt-3.5-turbo", "gpt-35-turbo"),
        ("gpt-4o", "gpt-4o"),
        ("my-fine-tune", "my-fine-tune"),
    ],
)
def test_deployment_for_with_the_configured_mapping(model: str, deployment: str) -> None:
    assert resolve("client-key").deployment_for(model) == deployment


def test_deployment_for_without_a_mapping_is_the_model_name() -> None:
    credentials = Credentials(key="k", endpoint=ENDPOINT, mapping={})
    assert credentials.deployment_for("gpt-4o-mini") == "gpt-4o-mini"


# Triple keys


def test_triple_key_with_pairs() -> None:
    credentials = resolve(f"myres:gpt-4|gpt4-prod,gpt-35-turbo|gpt35:{SECRET}")
    assert credentials.key == SECRET
    assert credentials.endpoint == "https://myres.openai.azure.com"
    assert dict(credentials.mapping) == {"gpt-4": "gpt4-prod", "gpt-35-turbo": "gpt35"}
    assert credentials.api_version is None


@pytest.mark.parametrize(
    ("model", "deployment"),
    [
        ("gpt-4", "gpt4-prod"),
        ("gpt-35-turbo", "gpt35"),
        ("unknown-model", "gpt4-prod"),
        # The configured mapping does not apply to a triple key's client.
        ("gpt-3.5-turbo", "gpt4-prod"),
    ],
)
def test_triple_key_deployments(model: str, deployment: str) -> None:
    credentials = resolve(f"myres:gpt-4|gpt4-prod,gpt-35-turbo|gpt35:{SECRET}")
    assert credentials.deployment_for(model) == deployment


@pytest.mark.parametrize("model", ["gpt-4", "gpt-3.5-turbo", "text-embedding-3-small"])
def test_triple_key_with_a_single_deployment_serves_every_model(model: str) -> None:
    credentials = resolve(f"myres:shared-dep:{SECRET}")
    assert credentials.deployment_for(model) == "shared-dep"
    assert credentials.endpoint == "https://myres.openai.azure.com"
    assert credentials.key == SECRET


def test_triple_key_with_api_version() -> None:
    credentials = resolve(f"myres:gpt-4|gpt4-prod:{SECRET}:2024-02-15-preview")
    assert credentials.api_version == "2024-02-15-preview"
    assert credentials.key == SECRET


def test_triple_key_uses_the_configured_template() -> None:
    credentials = resolve(
        f"myres:dep:{SECRET}", resource_endpoint="https://{resource}.cognitiveservices.azure.com"
    )
    assert credentials.endpoint == "https://myres.cognitiveservices.azure.com"


def test_triple_key_does_not_need_a_configured_endpoint() -> None:
    credentials = resolve(f"myres:dep:{SECRET}", endpoint=None)
    assert credentials.endpoint == "https://myres.openai.azure.com"


def test_triple_key_parts_are_trimmed() -> None:
    triple = parse_triple_key(f" myres : gpt-4 | gpt4-prod : {SECRET} : 2024-10-21 ")
    assert triple.resource == "myres"
    assert dict(triple.mapping) == {"gpt-4": "gpt4-prod"}
    assert triple.fallback_deployment == "gpt4-prod"
    assert triple.key == SECRET
    assert triple.api_version == "2024-10-21"


def test_triple_key_mapping_is_read_only() -> None:
    triple = parse_triple_key(f"myres:gpt-4|gpt4-prod:{SECRET}")
    with pytest.raises(TypeError):
        triple.mapping["gpt-4"] = "other"  # type: ignore[index]


@pytest.mark.parametrize(
    "client",
    [
        pytest.param(f"myres:{SECRET}", id="two-parts"),
        pytest.param(f"myres:dep:{SECRET}:2024-10-21:extra", id="five-parts"),
        pytest.param("myres:dep:", id="empty-key"),
        pytest.param("myres:dep: ", id="blank-key"),
        pytest.param(f"myres::{SECRET}", id="empty-map"),
        pytest.param(f"myres: :{SECRET}", id="blank-map"),
        pytest.param(f"myres:a,b:{SECRET}", id="list-without-pipes"),
        pytest.param(f"myres:gpt-4|x,y:{SECRET}", id="pair-and-bare-name"),
        pytest.param(f"myres:gpt-4|:{SECRET}", id="pair-without-deployment"),
        pytest.param(f"myres:|dep:{SECRET}", id="pair-without-model"),
        pytest.param(f"myres:,|,:{SECRET}", id="pipe-without-pairs"),
        pytest.param(f"myres:dep:{SECRET}:", id="empty-api-version"),
        pytest.param(f"myres:dep:{SECRET}:2024/10/21", id="api-version-slash"),
        pytest.param(f"myres:dep:{SECRET}:2024-10-21&x=1", id="api-version-query"),
        pytest.param(f"myres:dep:{SECRET}:{'1' * 41}", id="api-version-too-long"),
    ],
)
def test_malformed_triple_key(client: str) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        resolve(client)
    assert info.value.status == 401
    assert info.value.code == "invalid_api_key"
    assert info.value.message.startswith("Malformed RESOURCE:MAP:KEY credentials")
    assert SECRET not in str(info.value)
    assert SECRET not in info.value.to_json().decode()


@pytest.mark.parametrize(
    "resource",
    [
        "evil.com",
        "a/b",
        "x@y",
        "127.0.0.1",
        "a b",
        "a" * 64,
        "%2e",
        "",
        "evil.com#",
        "evil.com/",
        "a?b",
        "a\\b",
        "ré",
        "{resource}",
    ],
)
def test_resource_must_be_a_dns_label(resource: str) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        resolve(f"{resource}:dep:{SECRET}")
    assert info.value.status == 401
    assert "DNS label" in info.value.message
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("resource", ["a", "my-res-01", "A" * 63, "RES"])
def test_resource_accepts_dns_labels(resource: str) -> None:
    credentials = resolve(f"{resource}:dep:{SECRET}")
    assert credentials.endpoint == f"https://{resource}.openai.azure.com"
