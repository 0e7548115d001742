"""The deployments an Azure OpenAI resource really has, from Azure Resource Manager.

Used by `/v1/models` when management details are configured. The ARM answer is cached for a
minute, and an ARM token obtained by client credentials is reused until shortly before it
expires, so listing models costs one ARM call a minute at most.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp

ARM_API_VERSION = "2024-10-01"
ARM_SCOPE = "https://management.azure.com/.default"
CACHE_SECONDS = 60.0
TOKEN_MARGIN = 300.0  # refresh early, as azure-core does


@dataclass(frozen=True, slots=True)
class Management:
    """Where the resource lives in ARM, and how to authenticate there."""

    subscription: str
    resource_group: str
    account: str
    token: str | None = None  # a ready bearer token, or client credentials below
    tenant: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    arm_endpoint: str = "https://management.azure.com"
    authority: str = "https://login.microsoftonline.com"

    def deployments_url(self) -> str:
        return (
            f"{self.arm_endpoint}/subscriptions/{quote(self.subscription, safe='')}"
            f"/resourceGroups/{quote(self.resource_group, safe='')}/providers/"
            f"Microsoft.CognitiveServices/accounts/{quote(self.account, safe='')}"
            f"/deployments?api-version={ARM_API_VERSION}"
        )


class LiveDeploymentsError(Exception):
    """Raised when ARM cannot be asked (the caller falls back to the configured list)."""


class LiveDeployments:
    """Cached deployment names of one resource."""

    def __init__(self, management: Management) -> None:
        self._management = management
        self._names: tuple[float, list[str]] | None = None
        self._token: tuple[float, str] | None = None
        self._lock = asyncio.Lock()

    async def names(self, session: aiohttp.ClientSession) -> list[str]:
        async with self._lock:
            if self._names is None or self._names[0] < time.monotonic():
                names = await self._fetch(session)
                self._names = (time.monotonic() + CACHE_SECONDS, names)
            return self._names[1]

    async def _fetch(self, session: aiohttp.ClientSession) -> list[str]:
        headers = {"Authorization": f"Bearer {await self._bearer(session)}"}
        body = await _get_json(session, "GET", self._management.deployments_url(), headers)
        value = body.get("value")
        if not isinstance(value, list):
            raise LiveDeploymentsError("ARM's answer has no 'value' list")
        return sorted(
            d["name"] for d in value if isinstance(d, dict) and isinstance(d.get("name"), str)
        )

    async def _bearer(self, session: aiohttp.ClientSession) -> str:
        m = self._management
        if m.token:
            return m.token
        if self._token is not None and self._token[0] > time.monotonic():
            return self._token[1]
        url = f"{m.authority}/{quote(m.tenant or '', safe='')}/oauth2/v2.0/token"
        form = {
            "grant_type": "client_credentials",
            "client_id": m.client_id or "",
            "client_secret": m.client_secret or "",
            "scope": ARM_SCOPE,
        }
        body = await _get_json(session, "POST", url, {}, form)
        token, expires_in = body.get("access_token"), body.get("expires_in", 0)
        if not isinstance(token, str) or not isinstance(expires_in, int | float):
            raise LiveDeploymentsError("the token endpoint's answer has no access_token")
        self._token = (time.monotonic() + float(expires_in) - TOKEN_MARGIN, token)
        return token


async def _get_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: dict[str, str],
    form: dict[str, str] | None = None,
) -> dict[str, object]:
    try:
        async with asyncio.timeout(10):
            async with session.request(method, url, headers=headers, data=form) as response:
                if response.status != 200:
                    raise LiveDeploymentsError(f"{method} {url.split('?')[0]} → {response.status}")
                body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise LiveDeploymentsError(f"{type(exc).__name__} asking ARM") from None
    if not isinstance(body, dict):
        raise LiveDeploymentsError("ARM's answer is not a JSON object")
    return body
