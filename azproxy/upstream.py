"""Building the call to Azure: URL, headers, and the shared client session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .credentials import Credentials
from .h1client import H1Pool
from .keys import CLIENT_SESSION, H1_POOL, SETTINGS

# Never forwarded: connection-scoped (RFC 9110 §7.6.1), recomputed by aiohttp, or secrets of
# the client that Azure must not see (its key reaches Azure only as the resolved `api-key`).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# aiohttp's server decodes a gzip/deflate request body; what we forward is the decoded bytes.
REQUEST_DECODED = frozenset({"content-encoding"})
_CLIENT_ONLY = frozenset(
    {
        "authorization",
        "api-key",
        "openai-organization",
        "openai-project",
        "cookie",
        "accept-encoding",
    }
)
DROPPED_TOWARDS_AZURE = HOP_BY_HOP | _CLIENT_ONLY | REQUEST_DECODED
# Seconds an idle upstream connection is kept, in both clients: below the 4 minutes after which
# Azure's load balancers drop idle connections.
KEEPALIVE = 60.0


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One request to send upstream."""

    method: str
    url: str
    headers: CIMultiDict[str]
    body: bytes | AsyncIterator[bytes] | None
    host: str  # for error messages: names the upstream without any secret
    auto_decompress: bool = True


def forwarded_headers(
    client_headers: Mapping[str, str], dropped: frozenset[str] = DROPPED_TOWARDS_AZURE
) -> CIMultiDict[str]:
    """The client's headers minus those that must not cross the gateway.

    Headers the client names in `Connection` are hop-by-hop too (RFC 9110 §7.6.1).
    """
    connection = client_headers.get("Connection")
    if connection:
        dropped = dropped | {name.strip().lower() for name in connection.split(",")}
    return CIMultiDict((k, v) for k, v in client_headers.items() if k.lower() not in dropped)


def azure_headers(
    request: web.Request, credentials: Credentials, request_id: str
) -> CIMultiDict[str]:
    """Headers for Azure: the client's harmless ones, the resolved key, a traceable id."""
    headers = forwarded_headers(request.headers)
    headers["api-key"] = credentials.key
    # Identity keeps streams and bodies byte-for-byte and spares a decompress/recompress.
    headers["Accept-Encoding"] = "identity"
    headers.setdefault("x-ms-client-request-id", request_id)
    return headers


def host_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, for messages that must name the upstream safely."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def select_headers(
    headers: CIMultiDictProxy[str], names: frozenset[str], prefixes: tuple[str, ...]
) -> CIMultiDict[str]:
    """The upstream headers a client may see: the named ones and those with the given prefixes."""
    return CIMultiDict(
        (k, v) for k, v in headers.items() if (lk := k.lower()) in names or lk.startswith(prefixes)
    )


def create_session(app: web.Application) -> aiohttp.ClientSession:
    """The one upstream session; its pool is sized by AZURE_OPENAI_PROXY_POOL_SIZE."""
    settings = app[SETTINGS]
    connector = aiohttp.TCPConnector(
        limit=settings.pool_size, limit_per_host=0, keepalive_timeout=KEEPALIVE
    )
    # sock_connect, not connect: aiohttp's `connect` also counts the wait for a free pooled
    # connection, which would turn a busy pool into false "connect timeout" 504s. That wait
    # is bounded by the first-byte timeout instead.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=True,
        # One session serves every client: a cookie Azure sets for one must never be sent on
        # behalf of another (and not tracking cookies spares work on every call).
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent",),
        trust_env=False,
    )


async def session_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: open the upstream clients with the app, close them with the app."""
    settings = app[SETTINGS]
    session = create_session(app)
    app[CLIENT_SESSION] = session
    if settings.upstream_client == "lean":
        app[H1_POOL] = H1Pool(settings.pool_size, settings.connect_timeout, keepalive=KEEPALIVE)
    yield
    if H1_POOL in app:
        await app[H1_POOL].close()
    await session.close()
