"""Where each OpenAI operation goes on Azure: pure URL building, no I/O.

Two Azure surfaces exist. The classic one names the deployment in the path and needs an
api-version: `{endpoint}/openai/deployments/{deployment}/{op}?api-version=V`. The v1 one is
OpenAI-shaped: `{endpoint}/openai/v1/{op}` with the deployment as the body's `model`.
Which one a call uses is decided per endpoint family by `Settings.api_version_for`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import quote, urlencode

from .settings import V1

BodyKind = Literal["json", "multipart"]


@dataclass(frozen=True, slots=True)
class Operation:
    """An OpenAI operation served by an Azure deployment."""

    path: str  # OpenAI path without /v1, e.g. "chat/completions"
    family: str  # the api-version family (settings.FAMILY_DEFAULTS)
    body: BodyKind = "json"
    # Azure documents audio and images on v1 as preview features, asked for by query.
    v1_query: str = ""


DEPLOYMENT_OPERATIONS: tuple[Operation, ...] = (
    Operation("chat/completions", "chat"),
    Operation("completions", "completions"),
    Operation("embeddings", "embeddings"),
    Operation("images/generations", "images", v1_query="api-version=preview"),
    Operation("images/edits", "images_edits", "multipart", v1_query="api-version=preview"),
    Operation("audio/speech", "audio", v1_query="api-version=preview"),
    Operation("audio/transcriptions", "audio", "multipart", v1_query="api-version=preview"),
    Operation("audio/translations", "audio", "multipart", v1_query="api-version=preview"),
)

# Resource-level API groups (no deployment in the path) and their api-version family.
RESOURCE_GROUPS: dict[str, str] = {
    "responses": "responses",
    "files": "files",
    "fine_tuning": "files",
    "vector_stores": "files",
    "batches": "batches",
}

# OpenAI paths with no Azure equivalent (first path segment after /v1).
UNSUPPORTED_ON_AZURE: frozenset[str] = frozenset(
    {
        "moderations",
        "images/variations",
        "uploads",
        "assistants",  # Azure retired its Assistants API on 2026-08-26
        "threads",
        "organization",
        "containers",
        "chatkit",
    }
)


@dataclass(frozen=True, slots=True)
class Target:
    """The upstream URL, and whether the body's `model` must become the deployment name."""

    url: str
    rewrite_model: bool


def deployment_target(
    endpoint: str, operation: Operation, deployment: str, api_version: str
) -> Target:
    """Classic deployment route, or the v1 route when the version is "v1"."""
    if api_version == V1:
        query = f"?{operation.v1_query}" if operation.v1_query else ""
        return Target(f"{endpoint}/openai/v1/{operation.path}{query}", rewrite_model=True)
    return Target(
        _classic_url(endpoint, deployment, operation.path, api_version), rewrite_model=False
    )


@lru_cache(maxsize=1024)
def _classic_url(endpoint: str, deployment: str, path: str, api_version: str) -> str:
    # Kept: a gateway calls the same few deployments over and over, and quoting and encoding
    # them anew was ~3 % of a request's CPU in the benchmark's profile.
    version = urlencode({"api-version": api_version})
    return f"{endpoint}/openai/deployments/{quote(deployment, safe='')}/{path}?{version}"


def resource_url(
    endpoint: str, path: str, query: Iterable[tuple[str, str]], api_version: str
) -> str:
    """`{endpoint}/openai/v1/{path}` on v1, else `{endpoint}/openai/{path}?api-version=V`.

    The client's other query parameters (pagination: `after`, `limit`, `order`) are kept.
    """
    pairs = [(k, v) for k, v in query if k != "api-version"]
    if api_version != V1:
        pairs.append(("api-version", api_version))
    prefix = "openai/v1" if api_version == V1 else "openai"
    encoded = f"?{urlencode(pairs)}" if pairs else ""
    return f"{endpoint}/{prefix}/{quote(path, safe='/')}{encoded}"
