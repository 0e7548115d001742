"""Typed, validated configuration: the only module that knows the variable names.

Precedence is decided by the caller, which merges its sources into one mapping
(flags over environment over `.env` over the defaults below) and calls `load_settings` once.
Every problem is reported at start-up as one line naming the setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, TypeVar, get_args
from urllib.parse import urlsplit

from .live_models import Management
from .mapper import MapperSyntaxError, build_mapping

Mode = Literal["azure", "openai"]
StreamMode = Literal["openai", "passthrough"]
UpstreamClient = Literal["lean", "aiohttp"]
_Choice = TypeVar("_Choice", bound=str)

DEFAULT_API_VERSION = "2024-10-21"
V1 = "v1"  # Azure's versionless GA surface, {endpoint}/openai/v1/...

# Endpoint families whose api-version can be set on its own (AZURE_OPENAI_APIVERSION_<FAMILY>).
# Families without a default here follow AZURE_OPENAI_APIVERSION.
FAMILY_DEFAULTS: Mapping[str, str] = {
    "chat": "",
    "completions": "",
    "embeddings": "",
    "images": "",
    "images_edits": "2025-04-01-preview",  # gpt-image-1 edits exist only in previews
    "audio": "",
    "responses": V1,
    "files": V1,  # files, fine_tuning, vector_stores
    "batches": "",
    "realtime": V1,
}
# Azure's v1 surface lacks these; they stay on a dated classic route even when v1 is chosen.
CLASSIC_ONLY = frozenset({"completions", "batches"})
DEFAULT_RESOURCE_ENDPOINT = "https://{resource}.openai.azure.com"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """Raised at start-up for a setting that cannot be used; the message names the setting."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the gateway is configured with, validated once."""

    host: str = "0.0.0.0"
    port: int = 8080
    mode: Mode = "azure"
    endpoint: str | None = None  # None: serve from the built-in emulator
    api_version: str = DEFAULT_API_VERSION
    model_mapping: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(build_mapping(None))
    )
    token: str | None = None
    openai_base: str = "https://api.openai.com"
    resource_endpoint: str = DEFAULT_RESOURCE_ENDPOINT
    cors_origins: tuple[str, ...] = ("*",)
    connect_timeout: float = 10.0
    first_byte_timeout: float = 300.0
    stream_idle_timeout: float = 300.0
    pool_size: int = 1024
    max_body: int = 32 * 1024 * 1024
    log_level: str = "INFO"
    access_log: bool = True
    workers: int = 1
    shutdown_timeout: float = 30.0
    backlog: int = 4096
    stream_mode: StreamMode = "openai"
    # "lean": in-memory bodies go through `h1client`; "aiohttp": every call through aiohttp.
    upstream_client: UpstreamClient = "lean"
    management: Management | None = None  # set: /v1/models lists the live deployments
    family_api_versions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def api_version_for(self, family: str, default: str | None = None) -> str:
        """The api-version for an endpoint family: its own setting, else `default` (a triple
        key's version), else the global one.

        A family Azure's v1 surface lacks never gets "v1": it falls back to the dated default.
        """
        version = (
            self.family_api_versions.get(family)
            or FAMILY_DEFAULTS.get(family)
            or default
            or self.api_version
        )
        if version == V1 and family in CLASSIC_ONLY:
            return DEFAULT_API_VERSION
        return version


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build `Settings` from a merged mapping of variables; raise `ConfigError` on bad values."""
    get = _Reader(env)
    host, port = parse_address(get.text("AZURE_OPENAI_PROXY_ADDRESS") or "0.0.0.0:8080")
    return Settings(
        host=host,
        port=port,
        mode=get.choice("AZURE_OPENAI_PROXY_MODE", get_args(Mode)),
        endpoint=_endpoint(get.text("AZURE_OPENAI_ENDPOINT")),
        api_version=get.text("AZURE_OPENAI_APIVERSION")
        or get.text("AZURE_OPENAI_API_VER")
        or DEFAULT_API_VERSION,
        model_mapping=MappingProxyType(_mapping(get.text("AZURE_OPENAI_MODEL_MAPPER"))),
        token=get.text("AZURE_OPENAI_TOKEN"),
        openai_base=_url(
            "OPENAI_API_BASE", get.text("OPENAI_API_BASE") or "https://api.openai.com"
        ),
        resource_endpoint=_resource_template(get.text("AZURE_OPENAI_RESOURCE_ENDPOINT")),
        cors_origins=_origins(get.text("AZURE_OPENAI_PROXY_CORS_ORIGINS") or "*"),
        connect_timeout=get.seconds("AZURE_OPENAI_CONNECT_TIMEOUT", 10.0),
        first_byte_timeout=get.seconds("AZURE_OPENAI_FIRST_BYTE_TIMEOUT", 300.0),
        stream_idle_timeout=get.seconds("AZURE_OPENAI_STREAM_IDLE_TIMEOUT", 300.0),
        pool_size=get.integer("AZURE_OPENAI_PROXY_POOL_SIZE", 1024, minimum=1),
        max_body=get.integer("AZURE_OPENAI_PROXY_MAX_BODY", 32 * 1024 * 1024, minimum=1),
        log_level=_log_level(get.text("AZURE_OPENAI_PROXY_LOG_LEVEL") or "INFO"),
        access_log=get.boolean("AZURE_OPENAI_PROXY_ACCESS_LOG", True),
        workers=get.integer("AZURE_OPENAI_PROXY_WORKERS", 1, minimum=1),
        backlog=get.integer("AZURE_OPENAI_PROXY_BACKLOG", 4096, minimum=1),
        stream_mode=get.choice("AZURE_OPENAI_STREAM_MODE", get_args(StreamMode)),
        upstream_client=get.choice("AZURE_OPENAI_PROXY_UPSTREAM_CLIENT", get_args(UpstreamClient)),
        management=_management(get),
        shutdown_timeout=get.seconds("AZURE_OPENAI_PROXY_SHUTDOWN_TIMEOUT", 30.0),
        family_api_versions=MappingProxyType(
            {
                family: version
                for family in FAMILY_DEFAULTS
                if (version := get.text(f"AZURE_OPENAI_APIVERSION_{family.upper()}"))
            }
        ),
    )


class _Reader:
    """Reads and casts single variables, naming the variable in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def seconds(self, name: str, default: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
        if not value > 0:
            raise ConfigError(f"{name}={raw!r} must be greater than 0")
        return value

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not an integer") from None
        if value < minimum:
            raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
        return value

    def choice(self, name: str, options: tuple[_Choice, ...]) -> _Choice:
        """One of `options` (any case); the first when unset."""
        raw = self.text(name)
        if raw is None:
            return options[0]
        for option in options:
            if option == raw.lower():
                return option
        raise ConfigError(f"{name}={raw!r} is not one of: {', '.join(options)}")

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={raw!r} is not a boolean (true/false)")


def parse_address(address: str) -> tuple[str, int]:
    """Split `host:port` (`[v6]:port` and `:port` too) or raise `ConfigError`."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(
            f"AZURE_OPENAI_PROXY_ADDRESS={address!r} is not host:port (e.g. 0.0.0.0:8080)"
        )
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


def _management(get: _Reader) -> Management | None:
    where = {
        name: get.text(name)
        for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_OPENAI_ACCOUNT")
    }
    if not any(where.values()):
        return None
    missing = [name for name, value in where.items() if not value]
    if missing:
        raise ConfigError(f"live model listing needs {', '.join(missing)} too")
    credentials = {
        name: get.text(name)
        for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
    }
    token = get.text("AZURE_MANAGEMENT_TOKEN")
    if not token and not all(credentials.values()):
        raise ConfigError(
            "live model listing needs AZURE_MANAGEMENT_TOKEN, or AZURE_TENANT_ID, "
            "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
        )
    return Management(
        subscription=where["AZURE_SUBSCRIPTION_ID"] or "",
        resource_group=where["AZURE_RESOURCE_GROUP"] or "",
        account=where["AZURE_OPENAI_ACCOUNT"] or "",
        token=token,
        tenant=credentials["AZURE_TENANT_ID"],
        client_id=credentials["AZURE_CLIENT_ID"],
        client_secret=credentials["AZURE_CLIENT_SECRET"],
        arm_endpoint=_url(
            "AZURE_MANAGEMENT_ENDPOINT",
            get.text("AZURE_MANAGEMENT_ENDPOINT") or "https://management.azure.com",
        ),
        authority=_url(
            "AZURE_AUTHORITY_HOST",
            get.text("AZURE_AUTHORITY_HOST") or "https://login.microsoftonline.com",
        ),
    )


def _url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}={value!r} is not an http(s) URL")
    if parts.query or parts.fragment:
        raise ConfigError(f"{name}={value!r} must not have a query or fragment")
    if parts.username is not None or parts.password is not None:
        # It would show in error messages and logs; Azure takes keys in headers anyway.
        raise ConfigError(f"{name} must not carry user:password@ credentials")
    return value.rstrip("/")


def _endpoint(value: str | None) -> str | None:
    return None if value is None else _url("AZURE_OPENAI_ENDPOINT", value)


def _resource_template(value: str | None) -> str:
    if value is None:
        return DEFAULT_RESOURCE_ENDPOINT
    if "{resource}" not in value:
        raise ConfigError(f"AZURE_OPENAI_RESOURCE_ENDPOINT={value!r} must contain {{resource}}")
    _url("AZURE_OPENAI_RESOURCE_ENDPOINT", value.replace("{resource}", "resource"))
    return value.rstrip("/")


def _mapping(value: str | None) -> dict[str, str]:
    try:
        return build_mapping(value)
    except MapperSyntaxError as exc:
        raise ConfigError(f"AZURE_OPENAI_MODEL_MAPPER: {exc}") from None


def _origins(value: str) -> tuple[str, ...]:
    origins = tuple(item.strip().rstrip("/") for item in value.split(",") if item.strip())
    for origin in origins:
        if origin != "*" and urlsplit(_url("AZURE_OPENAI_PROXY_CORS_ORIGINS", origin)).path:
            # Browsers send Origin as scheme://host[:port]; a path would never match.
            raise ConfigError(f"AZURE_OPENAI_PROXY_CORS_ORIGINS: {origin!r} must not have a path")
    return origins or ("*",)


def _log_level(value: str) -> str:
    upper = value.upper()
    if upper not in LOG_LEVELS:
        raise ConfigError(f"AZURE_OPENAI_PROXY_LOG_LEVEL={value!r} is not one of {LOG_LEVELS}")
    return upper
