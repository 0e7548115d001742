"""Azure Resource Manager, the one call the gateway makes: listing a resource's deployments.

`GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/
{account}/deployments?api-version=…` with any non-empty Bearer token. ARM paths are
case-insensitive, so the path is matched here rather than by the router.
"""

from __future__ import annotations

import re

from aiohttp import web

from .catalogue import DEFAULT_DEPLOYMENTS, model_of
from .checks import bearer_token
from .delivery import json_response
from .errors import JSON, azure_error
from .state import EMULATOR_STATE

DEPLOYMENTS = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.CognitiveServices/accounts/(?P<account>[^/]+)/deployments/?",
    re.IGNORECASE,
)
DEPLOYMENT_TYPE = "Microsoft.CognitiveServices/accounts/deployments"
NO_TOKEN = "Authentication failed. The 'Authorization' header is missing."
NO_API_VERSION = "The api-version query parameter (?api-version=) is required for all requests."


def arm_deployment(prefix: str, name: str) -> JSON:
    """One deployment as ARM lists it."""
    model, version = model_of(name)
    return {
        "id": f"{prefix}/deployments/{name}",
        "type": DEPLOYMENT_TYPE,
        "name": name,
        "sku": {"name": "Standard", "capacity": 10},
        "properties": {
            "model": {"format": "OpenAI", "name": model, "version": version},
            "versionUpgradeOption": "OnceNewDefaultVersionAvailable",
            "provisioningState": "Succeeded",
        },
    }


async def arm(request: web.Request) -> web.StreamResponse:
    """`GET /subscriptions/…/accounts/{account}/deployments`; any other ARM path is a 404."""
    match = DEPLOYMENTS.fullmatch(request.path)
    if match is None or request.method != "GET":
        message = f"The resource '{request.path}' was not found."
        return json_response(azure_error("ResourceNotFound", message), 404)
    if not bearer_token(request.headers):
        return json_response(azure_error("AuthenticationFailed", NO_TOKEN), 401)
    if not request.query.get("api-version"):
        return json_response(azure_error("MissingApiVersionParameter", NO_API_VERSION), 400)
    state = request.app[EMULATOR_STATE]
    names = sorted(state.deployments) if state.deployments is not None else DEFAULT_DEPLOYMENTS
    prefix = (
        f"/subscriptions/{match['sub']}/resourceGroups/{match['rg']}/providers/"
        f"Microsoft.CognitiveServices/accounts/{match['account']}"
    )
    return json_response({"value": [arm_deployment(prefix, n) for n in names]})


async def token(request: web.Request) -> web.StreamResponse:
    """Microsoft Entra's client-credentials token endpoint, enough for the gateway's ARM calls."""
    form = await request.post()
    if form.get("grant_type") != "client_credentials" or not form.get("client_secret"):
        error = {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client."}
        return json_response(error, 401)
    if form.get("scope") != "https://management.azure.com/.default":
        error = {"error": "invalid_scope", "error_description": "AADSTS70011: Invalid scope."}
        return json_response(error, 400)
    return json_response(
        {"token_type": "Bearer", "expires_in": 3599, "access_token": "emulator-arm-token"}
    )
