"""Resolving who pays for a call: the Azure key, endpoint and per-client deployment map.

Pure functions over header values, so every credential form is unit-testable without a server.
Precedence: `AZURE_OPENAI_TOKEN` > the `api-key` header > `Authorization: Bearer`.
A key may carry everything, as the Node original allowed::

    RESOURCE:MAP:KEY[:API_VERSION]     MAP = model|deployment,model|deployment  or  deployment
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from .errors import AuthenticationFailed
from .mapper import MapperSyntaxError, parse_mapper, resolve_deployment

if TYPE_CHECKING:
    from .settings import Settings

# A resource name becomes part of a host name: only a plain DNS label may, so a client
# can never steer the gateway (and the key it sends) to a host of its choosing.
_RESOURCE_LABEL = re.compile(r"[A-Za-z0-9-]{1,63}")
_API_VERSION = re.compile(r"[A-Za-z0-9.-]{1,40}")


@dataclass(frozen=True, slots=True)
class Credentials:
    """The resolved upstream identity for one request."""

    key: str
    endpoint: str
    mapping: Mapping[str, str]
    # The triple key's fallback for models its map does not name; None outside triple keys.
    fallback_deployment: str | None = None
    api_version: str | None = None

    def deployment_for(self, model: str) -> str:
        """The deployment that serves `model` for this client."""
        if self.fallback_deployment is not None and model not in self.mapping:
            return self.fallback_deployment
        return resolve_deployment(model, self.mapping)


@dataclass(frozen=True, slots=True)
class TripleKey:
    """The parts of a `RESOURCE:MAP:KEY[:API_VERSION]` bearer key."""

    resource: str
    mapping: Mapping[str, str]
    fallback_deployment: str
    key: str
    api_version: str | None


def client_key(api_key_header: str | None, authorization: str | None) -> str | None:
    """The key the client sent: `api-key` first, then `Authorization: Bearer`."""
    if api_key_header and api_key_header.strip():
        return api_key_header.strip()
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


def parse_triple_key(value: str) -> TripleKey:
    """Parse a triple key or raise `AuthenticationFailed` (never echoing the key)."""
    parts = value.split(":")
    if len(parts) not in (3, 4):
        raise _malformed("expected RESOURCE:MAP:KEY or RESOURCE:MAP:KEY:API_VERSION")
    resource, map_text, key = parts[0].strip(), parts[1].strip(), parts[2].strip()
    api_version = parts[3].strip() if len(parts) == 4 else None
    if not _RESOURCE_LABEL.fullmatch(resource):
        raise _malformed("the resource name must be a DNS label (letters, digits and '-')")
    if not key:
        raise _malformed("the key part is empty")
    if api_version is not None and not _API_VERSION.fullmatch(api_version):
        raise _malformed("the api-version part is not a version such as 2024-10-21")
    mapping, fallback = _parse_triple_map(map_text)
    return TripleKey(resource, MappingProxyType(mapping), fallback, key, api_version)


def _parse_triple_map(text: str) -> tuple[dict[str, str], str]:
    if "|" not in text:
        if not text or "," in text:
            raise _malformed("MAP must be model|deployment pairs or a single deployment name")
        return {}, text
    try:
        mapping = parse_mapper(text, separator="|")
    except MapperSyntaxError:
        raise _malformed("MAP must be model|deployment pairs separated by commas") from None
    return mapping, next(iter(mapping.values()))


def _malformed(reason: str) -> AuthenticationFailed:
    return AuthenticationFailed(
        f"Malformed RESOURCE:MAP:KEY credentials in the Authorization header: {reason}.",
        code="invalid_api_key",
    )


def resolve_credentials(
    *,
    token: str | None,
    client: str | None,
    endpoint: str | None,
    mapping: Mapping[str, str],
    resource_endpoint: str,
) -> Credentials:
    """Apply the precedence rules; raise `AuthenticationFailed` when nothing usable is given."""
    if token:
        # The operator's key replaces everything the client sends, triple keys included:
        # a client must not be able to send the operator's key to a resource of its choosing.
        return Credentials(token, _require(endpoint), mapping)
    if not client:
        raise AuthenticationFailed(
            "You didn't provide an API key. Send your Azure OpenAI key as "
            "'Authorization: Bearer <key>' or in an 'api-key' header.",
            code="missing_api_key",
        )
    if ":" in client:
        triple = parse_triple_key(client)
        return Credentials(
            key=triple.key,
            endpoint=resource_endpoint.replace("{resource}", triple.resource),
            mapping=triple.mapping,
            fallback_deployment=triple.fallback_deployment,
            api_version=triple.api_version,
        )
    return Credentials(client, _require(endpoint), mapping)


def credentials_for(settings: Settings, client: str | None) -> Credentials:
    """`resolve_credentials` with the gateway's configuration."""
    return resolve_credentials(
        token=settings.token,
        client=client,
        endpoint=settings.endpoint,
        mapping=settings.model_mapping,
        resource_endpoint=settings.resource_endpoint,
    )


def _require(endpoint: str | None) -> str:
    if endpoint is None:
        # Only reachable if the app was built without an endpoint and without the emulator.
        raise AuthenticationFailed(
            "No Azure endpoint is configured: set AZURE_OPENAI_ENDPOINT or send a "
            "RESOURCE:MAP:KEY bearer key.",
            code="no_endpoint",
        )
    return endpoint
