"""The checks Azure makes before it serves a request, and the fault-then-deliver step after.

Classic routes check, in order: api-version (missing or not serving the operation: 404), key
(401), deployment (404). The v1 surface checks its optional api-version (400 if it is not `v1`
or `preview`), then the key; the deployment comes from the body, so it is checked later.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from aiohttp import web

from .delivery import Payload, deliver, json_response
from .errors import (
    ACCESS_DENIED,
    DEPLOYMENT_NOT_FOUND,
    RESOURCE_NOT_FOUND,
    SERVER_ERROR,
    azure_error,
    azure_rate_limited,
)
from .state import EMULATOR_STATE, EmulatorState, Fault

# Which api-version values serve a classic operation; None means any.
VersionRule = Callable[[str], bool] | None
V1_VERSIONS = ("v1", "preview")
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token of an `Authorization: Bearer …` header, or ""."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def is_preview(version: str) -> bool:
    """A dated preview api-version (the only ones serving images/edits, audio/speech)."""
    return "preview" in version


def since(date: str) -> Callable[[str], bool]:
    """A rule accepting dated api-versions from `date` (YYYY-MM-DD) on, preview or not."""

    def accepts(version: str) -> bool:
        match = _DATE.match(version)
        return match is not None and match[1] >= date

    return accepts


def not_found() -> web.Response:
    """Azure's bare 404, for unknown paths and api-versions that lack the operation."""
    return json_response(azure_error("404", RESOURCE_NOT_FOUND), 404)


def key_rejection(
    request: web.Request, state: EmulatorState, key: str | None = None
) -> web.Response | None:
    """401 unless the request carries an accepted key (`api-key` header, else Bearer)."""
    if key is None:
        key = request.headers.get("api-key", "").strip() or bearer_token(request.headers)
    if not key or (state.keys is not None and key not in state.keys):
        return json_response(azure_error("401", ACCESS_DENIED), 401, reason="PermissionDenied")
    return None


def deployment_rejection(state: EmulatorState, deployment: str) -> web.Response | None:
    """404 DeploymentNotFound unless `deployment` exists."""
    if state.deployments is not None and deployment not in state.deployments:
        return json_response(azure_error("DeploymentNotFound", DEPLOYMENT_NOT_FOUND), 404)
    return None


def classic_rejection(
    request: web.Request,
    state: EmulatorState,
    deployment: str | None = None,
    versions: VersionRule = None,
) -> web.Response | None:
    """The classic route's checks, in Azure's order; None when the request passes them."""
    version = request.query.get("api-version")
    if not version or (versions is not None and not versions(version)):
        return not_found()
    rejection = key_rejection(request, state)
    if rejection is None and deployment is not None:
        rejection = deployment_rejection(state, deployment)
    return rejection


def v1_version_rejection(request: web.Request) -> web.Response | None:
    """400 unless the api-version, if any, is one the v1 surface takes (`v1`, `preview`)."""
    version = request.query.get("api-version")
    if version and version not in V1_VERSIONS:
        return json_response(azure_error("BadRequest", "API version not supported"), 400)
    return None


def v1_rejection(request: web.Request, state: EmulatorState) -> web.Response | None:
    """The v1 surface's checks: an optional api-version of `v1`/`preview`, then the key."""
    return v1_version_rejection(request) or key_rejection(request, state)


def surface_rejection(
    request: web.Request, state: EmulatorState, versions: VersionRule = None
) -> web.Response | None:
    """The checks of a route served on both surfaces, by the `surface` its path matched:
    "v1/" for `…/openai/v1/…`, "" for the classic `…/openai/…?api-version=`."""
    if request.match_info.get("surface"):
        return v1_rejection(request, state)
    return classic_rejection(request, state, None, versions)


def api_version(request: web.Request) -> str:
    """The api-version a request was served under (v1 when it names none)."""
    return request.query.get("api-version") or "v1"


def failure(fault: Fault, operation: str, version: str) -> web.Response:
    """Azure's answer to a `status` fault: its 429 (with retry hints) or a server error."""
    if fault.status == 429:
        headers = {
            "retry-after": str(fault.retry_after),
            "retry-after-ms": str(fault.retry_after * 1000),
            "x-ratelimit-remaining-requests": "0",
        }
        body = azure_rate_limited(operation, version, fault.retry_after)
        return json_response(body, 429, headers=headers)
    return json_response(azure_error("InternalServerError", SERVER_ERROR), fault.status)


async def answer(
    request: web.Request,
    operation: str,
    reply: Payload | web.Response,
    commit: Callable[[], object] | None = None,
) -> web.StreamResponse:
    """Send a rejection as is; otherwise consume the next fault and deliver `reply` under it.

    `commit` (storing what the request created) runs only when the request is served, not
    when a `status` fault fails it.
    """
    if isinstance(reply, web.Response):
        return reply
    fault = request.app[EMULATOR_STATE].take_fault()
    if fault is not None and fault.kind == "status":
        return failure(fault, operation, api_version(request))
    if commit is not None:
        commit()
    return await deliver(request, reply, fault)
