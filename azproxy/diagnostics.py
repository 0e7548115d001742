"""Turning Azure's terse `DeploymentNotFound` into an answer that says how to fix it.

It is the most common support question of the original proxies: a model name that is not
a deployment name on the resource.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from .credentials import Credentials
from .errors import error_body
from .responses import json_response


def explain_missing_deployment(
    response: web.StreamResponse, credentials: Credentials, model: str, deployment: str
) -> web.StreamResponse:
    """Replace a DeploymentNotFound body with one naming the model, deployment and fix."""
    if response.status != 404 or not isinstance(response, web.Response):
        return response
    body = response.body
    if not isinstance(body, bytes) or b"DeploymentNotFound" not in body:
        return response
    try:
        azure_message = orjson.loads(body)["error"]["message"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return response
    if credentials.fallback_deployment is not None:
        fix = f"put '{model}|<your-deployment>' in the MAP part of your RESOURCE:MAP:KEY key"
    else:
        fix = f"set AZURE_OPENAI_MODEL_MAPPER={model}=<your-deployment> (comma-separate more pairs)"
    message = (
        f"The model '{model}' was sent to the Azure deployment '{deployment}', which does not "
        f"exist on {credentials.endpoint}. To use another deployment for it, {fix}. "
        f"Azure said: {azure_message}"
    )
    relayed = json_response(
        error_body(message, "invalid_request_error", "model", "DeploymentNotFound"),
        status=404,
        headers={k: v for k, v in response.headers.items() if k.lower() != "content-type"},
    )
    return relayed
