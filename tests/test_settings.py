"""Settings: every variable's default, cast and validation, and the error naming it."""

from __future__ import annotations

import dataclasses
import re

import pytest

from azproxy.settings import ConfigError, Settings, load_settings, parse_address

MiB = 1024 * 1024


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.host == "0.0.0.0"
    assert settings.port == 8080
    assert settings.mode == "azure"
    assert settings.endpoint is None
    assert settings.api_version == "2024-10-21"
    assert dict(settings.model_mapping) == {
        "gpt-3.5-turbo": "gpt-35-turbo",
        "gpt-3.5-turbo-0301": "gpt-35-turbo-0301",
    }
    assert settings.token is None
    assert settings.openai_base == "https://api.openai.com"
    assert settings.resource_endpoint == "https://{resource}.openai.azure.com"
    assert settings.cors_origins == ("*",)
    assert settings.connect_timeout == 10.0
    assert settings.first_byte_timeout == 300.0
    assert settings.stream_idle_timeout == 300.0
    assert settings.max_body == 32 * MiB
    assert settings.pool_size == 1024
    assert settings.log_level == "INFO"
    assert settings.access_log is True


def test_empty_and_blank_values_mean_the_default() -> None:
    variables = [
        "AZURE_OPENAI_PROXY_ADDRESS",
        "AZURE_OPENAI_PROXY_MODE",
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_APIVERSION",
        "AZURE_OPENAI_MODEL_MAPPER",
        "AZURE_OPENAI_TOKEN",
        "AZURE_OPENAI_CONNECT_TIMEOUT",
        "AZURE_OPENAI_PROXY_MAX_BODY",
        "AZURE_OPENAI_PROXY_LOG_LEVEL",
        "AZURE_OPENAI_PROXY_ACCESS_LOG",
    ]
    assert load_settings(dict.fromkeys(variables, "  ")) == load_settings({})
    assert load_settings(dict.fromkeys(variables, "")) == load_settings({})


def test_load_settings_without_variables_equals_the_dataclass_defaults() -> None:
    assert load_settings({}) == Settings()


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_model_mapping_is_read_only() -> None:
    settings = load_settings({"AZURE_OPENAI_MODEL_MAPPER": "gpt-4=gpt4-prod"})
    with pytest.raises(TypeError):
        settings.model_mapping["gpt-4"] = "other"  # type: ignore[index]


# Address


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [
        ("0.0.0.0:8080", "0.0.0.0", 8080),
        ("127.0.0.1:9000", "127.0.0.1", 9000),
        ("localhost:80", "localhost", 80),
        (":9000", "0.0.0.0", 9000),
        ("[::1]:8080", "::1", 8080),
        ("[::]:443", "::", 443),
        ("host:0", "host", 0),
        ("host:65535", "host", 65535),
    ],
)
def test_parse_address(address: str, host: str, port: int) -> None:
    assert parse_address(address) == (host, port)


@pytest.mark.parametrize(
    "address", ["nope", "8080", "host:", "host:http", "host:65536", "host:-1", "[::1]", ""]
)
def test_parse_address_rejects(address: str) -> None:
    with pytest.raises(ConfigError, match="AZURE_OPENAI_PROXY_ADDRESS") as info:
        parse_address(address)
    assert repr(address) in str(info.value)


def test_address_variable() -> None:
    settings = load_settings({"AZURE_OPENAI_PROXY_ADDRESS": " [::1]:8081 "})
    assert (settings.host, settings.port) == ("::1", 8081)


def test_address_variable_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^AZURE_OPENAI_PROXY_ADDRESS='nope' "):
        load_settings({"AZURE_OPENAI_PROXY_ADDRESS": "nope"})


# Mode


@pytest.mark.parametrize(
    ("value", "mode"),
    [("azure", "azure"), ("openai", "openai"), ("Azure", "azure"), ("OPENAI", "openai")],
)
def test_mode(value: str, mode: str) -> None:
    assert load_settings({"AZURE_OPENAI_PROXY_MODE": value}).mode == mode


@pytest.mark.parametrize("value", ["aws", "azure-openai", "open ai"])
def test_mode_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match=f"^AZURE_OPENAI_PROXY_MODE={value!r} "):
        load_settings({"AZURE_OPENAI_PROXY_MODE": value})


# Endpoints


@pytest.mark.parametrize(
    ("value", "endpoint"),
    [
        ("https://res.openai.azure.com", "https://res.openai.azure.com"),
        ("https://res.openai.azure.com/", "https://res.openai.azure.com"),
        ("https://apim.example.com/prefix/", "https://apim.example.com/prefix"),
        ("https://apim.example.com/a/b", "https://apim.example.com/a/b"),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        (" https://res.openai.azure.com ", "https://res.openai.azure.com"),
    ],
)
def test_endpoint(value: str, endpoint: str) -> None:
    assert load_settings({"AZURE_OPENAI_ENDPOINT": value}).endpoint == endpoint


@pytest.mark.parametrize(
    "value",
    [
        "ftp://x",
        "not a url",
        "res.openai.azure.com",
        "https://",
        "https:///path",
        "https://res.openai.azure.com/?api-version=1",
        "https://res.openai.azure.com/#x",
    ],
)
def test_endpoint_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^" + re.escape(f"AZURE_OPENAI_ENDPOINT={value!r} ")):
        load_settings({"AZURE_OPENAI_ENDPOINT": value})


@pytest.mark.parametrize(
    ("value", "base"),
    [
        ("https://api.openai.com/", "https://api.openai.com"),
        ("http://localhost:4000/v1", "http://localhost:4000/v1"),
    ],
)
def test_openai_api_base(value: str, base: str) -> None:
    assert load_settings({"OPENAI_API_BASE": value}).openai_base == base


def test_openai_api_base_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^" + re.escape("OPENAI_API_BASE='api.openai.com' ")):
        load_settings({"OPENAI_API_BASE": "api.openai.com"})


@pytest.mark.parametrize(
    ("value", "template"),
    [
        ("https://{resource}.openai.azure.com/", "https://{resource}.openai.azure.com"),
        (
            "https://{resource}.cognitiveservices.azure.com",
            "https://{resource}.cognitiveservices.azure.com",
        ),
        ("http://gw.internal/{resource}", "http://gw.internal/{resource}"),
    ],
)
def test_resource_endpoint(value: str, template: str) -> None:
    settings = load_settings({"AZURE_OPENAI_RESOURCE_ENDPOINT": value})
    assert settings.resource_endpoint == template


@pytest.mark.parametrize(
    "value", ["https://res.openai.azure.com", "ftp://{resource}.example.com", "{resource}"]
)
def test_resource_endpoint_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^AZURE_OPENAI_RESOURCE_ENDPOINT="):
        load_settings({"AZURE_OPENAI_RESOURCE_ENDPOINT": value})


# API version


@pytest.mark.parametrize(
    ("env", "version"),
    [
        ({}, "2024-10-21"),
        ({"AZURE_OPENAI_APIVERSION": "2024-02-01"}, "2024-02-01"),
        ({"AZURE_OPENAI_API_VER": "2023-05-15"}, "2023-05-15"),
        (
            {"AZURE_OPENAI_APIVERSION": "2024-02-01", "AZURE_OPENAI_API_VER": "2023-05-15"},
            "2024-02-01",
        ),
        ({"AZURE_OPENAI_APIVERSION": "", "AZURE_OPENAI_API_VER": "2023-05-15"}, "2023-05-15"),
    ],
)
def test_api_version(env: dict[str, str], version: str) -> None:
    assert load_settings(env).api_version == version


# Model mapper


def test_model_mapper_adds_and_overrides_builtins() -> None:
    settings = load_settings(
        {"AZURE_OPENAI_MODEL_MAPPER": " gpt-3.5-turbo = my-35 , gpt-4=gpt4-prod, "}
    )
    assert dict(settings.model_mapping) == {
        "gpt-3.5-turbo": "my-35",
        "gpt-3.5-turbo-0301": "gpt-35-turbo-0301",
        "gpt-4": "gpt4-prod",
    }


def test_model_mapper_example_from_the_docs() -> None:
    settings = load_settings(
        {"AZURE_OPENAI_MODEL_MAPPER": "gpt-3.5-turbo=gpt-35-turbo,gpt-4=gpt4-prod"}
    )
    assert settings.model_mapping["gpt-3.5-turbo"] == "gpt-35-turbo"
    assert settings.model_mapping["gpt-4"] == "gpt4-prod"
    assert settings.model_mapping["gpt-3.5-turbo-0301"] == "gpt-35-turbo-0301"


@pytest.mark.parametrize("value", ["gpt-4", "=x", "gpt-4=", "a=b,gpt-4"])
def test_model_mapper_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^AZURE_OPENAI_MODEL_MAPPER: ") as info:
        load_settings({"AZURE_OPENAI_MODEL_MAPPER": value})
    assert "\n" not in str(info.value)


# Token


def test_token() -> None:
    assert load_settings({"AZURE_OPENAI_TOKEN": " secret-key "}).token == "secret-key"


# CORS


@pytest.mark.parametrize(
    ("value", "origins"),
    [
        ("*", ("*",)),
        ("https://a.example.com", ("https://a.example.com",)),
        (
            "https://a.example.com, http://localhost:3000",
            ("https://a.example.com", "http://localhost:3000"),
        ),
        (",", ("*",)),
    ],
)
def test_cors_origins(value: str, origins: tuple[str, ...]) -> None:
    assert load_settings({"AZURE_OPENAI_PROXY_CORS_ORIGINS": value}).cors_origins == origins


@pytest.mark.parametrize("value", ["a.example.com", "https://a.example.com,ftp://b"])
def test_cors_origins_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^AZURE_OPENAI_PROXY_CORS_ORIGINS="):
        load_settings({"AZURE_OPENAI_PROXY_CORS_ORIGINS": value})


# Timeouts

TIMEOUTS = [
    ("AZURE_OPENAI_CONNECT_TIMEOUT", "connect_timeout"),
    ("AZURE_OPENAI_FIRST_BYTE_TIMEOUT", "first_byte_timeout"),
    ("AZURE_OPENAI_STREAM_IDLE_TIMEOUT", "stream_idle_timeout"),
]


@pytest.mark.parametrize(("variable", "field"), TIMEOUTS)
@pytest.mark.parametrize(("value", "seconds"), [("2.5", 2.5), ("0.01", 0.01), ("60", 60.0)])
def test_timeout(variable: str, field: str, value: str, seconds: float) -> None:
    assert getattr(load_settings({variable: value}), field) == seconds


@pytest.mark.parametrize(("variable", "field"), TIMEOUTS)
@pytest.mark.parametrize("value", ["0", "-1", "-0.5", "ten", "5s", "nan"])
def test_timeout_rejected(variable: str, field: str, value: str) -> None:
    with pytest.raises(ConfigError, match=r"^" + re.escape(f"{variable}={value!r} ")):
        load_settings({variable: value})


# Integers


@pytest.mark.parametrize(
    ("variable", "field", "value", "expected"),
    [
        ("AZURE_OPENAI_PROXY_MAX_BODY", "max_body", "1048576", MiB),
        ("AZURE_OPENAI_PROXY_MAX_BODY", "max_body", "1", 1),
        ("AZURE_OPENAI_PROXY_POOL_SIZE", "pool_size", "16", 16),
        ("AZURE_OPENAI_PROXY_POOL_SIZE", "pool_size", "1", 1),
    ],
)
def test_integer_settings(variable: str, field: str, value: str, expected: int) -> None:
    assert getattr(load_settings({variable: value}), field) == expected


@pytest.mark.parametrize(
    "variable", ["AZURE_OPENAI_PROXY_MAX_BODY", "AZURE_OPENAI_PROXY_POOL_SIZE"]
)
@pytest.mark.parametrize("value", ["0", "-5", "1.5", "32MiB", "lots"])
def test_integer_settings_rejected(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=r"^" + re.escape(f"{variable}={value!r} ")):
        load_settings({variable: value})


# Logging


@pytest.mark.parametrize(
    ("value", "level"),
    [("debug", "DEBUG"), ("Warning", "WARNING"), ("ERROR", "ERROR"), ("critical", "CRITICAL")],
)
def test_log_level(value: str, level: str) -> None:
    assert load_settings({"AZURE_OPENAI_PROXY_LOG_LEVEL": value}).log_level == level


@pytest.mark.parametrize("value", ["verbose", "trace", "10"])
def test_log_level_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match=f"^AZURE_OPENAI_PROXY_LOG_LEVEL={value!r} "):
        load_settings({"AZURE_OPENAI_PROXY_LOG_LEVEL": value})


@pytest.mark.parametrize(
    ("value", "enabled"),
    [
        ("true", True),
        ("1", True),
        ("YES", True),
        ("on", True),
        ("false", False),
        ("0", False),
        ("No", False),
        ("off", False),
    ],
)
def test_access_log(value: str, enabled: bool) -> None:
    assert load_settings({"AZURE_OPENAI_PROXY_ACCESS_LOG": value}).access_log is enabled


def test_access_log_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^AZURE_OPENAI_PROXY_ACCESS_LOG='maybe' "):
        load_settings({"AZURE_OPENAI_PROXY_ACCESS_LOG": "maybe"})


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_unknown_variables_are_ignored() -> None:
    assert load_settings({"PATH": "/usr/bin", "AZURE_OPENAI_OTHER": "x"}) == Settings()
