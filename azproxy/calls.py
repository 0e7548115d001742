"""Handlers that call Azure: one class per kind of upstream call, bound per route.

The deployment middleware recognises `handle` as bound to an `UpstreamHandler` and resolves
credentials first; for `json_model` handlers it also reads the body, the model and the
deployment. Each handler then picks the Azure URL (`targets`) and hands over to `relay`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar, Literal

import orjson
from aiohttp import web
from multidict import CIMultiDict

from .diagnostics import explain_missing_deployment
from .errors import GatewayError, InvalidRequest, PayloadTooLarge
from .keys import BODY, CREDENTIALS, DEPLOYMENT, MODEL, PAYLOAD, REQUEST_ID, SETTINGS
from .multipart import BodyTooLarge, ModelNotFound, MultipartError, ScannedUpload, scan_for_model
from .relay import forward
from .settings import V1
from .targets import Operation, deployment_target, resource_url
from .upstream import UpstreamCall, azure_headers, host_of

# How the client addressed us, which decides the api-version:
# "openai" (/v1/...): the configured version; "azure" (/openai/...?api-version=): the client's
# wins; "azure_v1" (/openai/v1/...): Azure's v1 surface.
Style = Literal["openai", "azure", "azure_v1"]


# Families whose streams carry Azure's chat-chunk extras (AZURE_OPENAI_STREAM_MODE applies).
NORMALISED_FAMILIES = frozenset({"chat", "completions"})


class UpstreamHandler:
    """Base of the route handlers that forward to Azure."""

    json_model: ClassVar[bool] = False

    def __init__(self, family: str, style: Style = "openai") -> None:
        self.family = family
        self.style = style

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    @staticmethod
    def upstream_call(
        request: web.Request,
        url: str,
        body: bytes | AsyncIterator[bytes] | None,
        headers: CIMultiDict[str] | None = None,
    ) -> UpstreamCall:
        """The call to Azure with this request's method, resolved key and request id."""
        credentials = request[CREDENTIALS]
        if headers is None:
            headers = azure_headers(request, credentials, request[REQUEST_ID])
        return UpstreamCall(request.method, url, headers, body, host_of(credentials.endpoint))

    def api_version(self, request: web.Request) -> str:
        if self.style == "azure_v1":
            return V1
        client_version = request.query.get("api-version") if self.style == "azure" else None
        return client_version or request.app[SETTINGS].api_version_for(
            self.family, request[CREDENTIALS].api_version
        )


class DeploymentCall(UpstreamHandler):
    """A deployment-scoped operation with a JSON body (`chat/completions`, `embeddings`, …)."""

    json_model = True

    def __init__(self, operation: Operation, style: Style = "openai") -> None:
        super().__init__(operation.family, style)
        self.operation = operation

    async def handle(self, request: web.Request) -> web.StreamResponse:
        credentials = request[CREDENTIALS]
        deployment = request[DEPLOYMENT]
        target = deployment_target(
            credentials.endpoint, self.operation, deployment, self.api_version(request)
        )
        body = _with_model(request, deployment) if target.rewrite_model else request[BODY]
        call = self.upstream_call(request, target.url, body)
        normalise = (
            self.family in NORMALISED_FAMILIES and request.app[SETTINGS].stream_mode == "openai"
        )
        response = await forward(request, call, client_model=request[MODEL] if normalise else None)
        return explain_missing_deployment(response, credentials, request[MODEL], deployment)


class ResponsesCreate(UpstreamHandler):
    """`POST /v1/responses`: resource-level, with the deployment as the body's model."""

    json_model = True

    async def handle(self, request: web.Request) -> web.StreamResponse:
        credentials = request[CREDENTIALS]
        url = resource_url(
            credentials.endpoint, "responses", request.query.items(), self.api_version(request)
        )
        call = self.upstream_call(request, url, _with_model(request, request[DEPLOYMENT]))
        response = await forward(request, call)
        return explain_missing_deployment(
            response, credentials, request[MODEL], request[DEPLOYMENT]
        )


class ResourceCall(UpstreamHandler):
    """Resource-level APIs with no model (`files`, `batches`, `fine_tuning`, …): any method,
    the path after the group and the query kept, the body streamed through unchanged."""

    def __init__(self, group: str, family: str, style: Style = "openai") -> None:
        super().__init__(family, style)
        self.group = group

    async def handle(self, request: web.Request) -> web.StreamResponse:
        credentials = request[CREDENTIALS]
        tail = request.match_info.get("tail", "")
        path = f"{self.group}/{tail}" if tail else self.group
        version = self.api_version(request)
        url = resource_url(credentials.endpoint, path, request.query.items(), version)
        headers = azure_headers(request, credentials, request[REQUEST_ID])
        call = self.upstream_call(request, url, streamed_body(request, headers), headers)
        return await forward(request, call)


class MultipartCall(UpstreamHandler):
    """A deployment-scoped multipart upload (audio transcriptions, image edits).

    The model is a form field anywhere in the body: only what precedes it is spooled
    (`multipart.scan_for_model`); the rest streams through to Azure as it arrives.
    """

    def __init__(self, operation: Operation, style: Style = "openai") -> None:
        super().__init__(operation.family, style)
        self.operation = operation

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if "deployment" in request.match_info:
            # Azure-style path: it names the deployment, so the body streams through unread.
            return await self._send(request, request.match_info["deployment"], None)
        upload = await _scan(request)
        try:
            return await self._send(request, upload.model, upload)
        finally:
            upload.close()

    async def _send(
        self, request: web.Request, model: str, upload: ScannedUpload | None
    ) -> web.StreamResponse:
        credentials = request[CREDENTIALS]
        deployment = credentials.deployment_for(model)
        request[MODEL], request[DEPLOYMENT] = model, deployment
        target = deployment_target(
            credentials.endpoint, self.operation, deployment, self.api_version(request)
        )
        headers = azure_headers(request, credentials, request[REQUEST_ID])
        body: AsyncIterator[bytes] | None
        if upload is None:
            body = streamed_body(request, headers)
        else:
            replace = deployment if target.rewrite_model and model != deployment else None
            if (size := upload.size(replace)) is not None:
                headers["Content-Length"] = str(size)
            body = _as_gateway_errors(upload.body(replace))
        call = self.upstream_call(request, target.url, body, headers)
        response = await forward(request, call)
        return explain_missing_deployment(response, credentials, model, deployment)


async def _scan(request: web.Request) -> ScannedUpload:
    try:
        return await scan_for_model(
            request.content,
            request.headers.get("Content-Type", ""),
            content_length=request.content_length,
            max_body=request.app[SETTINGS].max_body,
        )
    except MultipartError as exc:
        raise _gateway_error(exc) from None


async def _as_gateway_errors(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The upload's bytes; a late multipart problem becomes the error the client should see."""
    try:
        async for chunk in body:
            yield chunk
    except MultipartError as exc:
        raise _gateway_error(exc) from None


def _gateway_error(exc: MultipartError) -> GatewayError:
    if isinstance(exc, BodyTooLarge):
        return PayloadTooLarge(f"The upload is too large: {exc}")
    if isinstance(exc, ModelNotFound):
        return InvalidRequest(
            "You must provide a model parameter: a 'model' form field such as 'whisper-1'.",
            param="model",
            code="missing_model",
        )
    return InvalidRequest(f"The multipart body is malformed: {exc}", code="invalid_multipart")


def _with_model(request: web.Request, deployment: str) -> bytes:
    """The JSON body re-encoded with `model` set to the deployment (Azure's v1 surface)."""
    payload = request[PAYLOAD]
    if payload.get("model") == deployment:
        return request[BODY]
    return orjson.dumps({**payload, "model": deployment})


def streamed_body(request: web.Request, headers: CIMultiDict[str]) -> AsyncIterator[bytes] | None:
    """The request body as it arrives, bounded by AZURE_OPENAI_PROXY_MAX_BODY; None if empty.

    A declared Content-Length is forwarded, so Azure sees the same framing as we did.
    """
    if not request.body_exists:
        return None
    limit = request.app[SETTINGS].max_body
    length = request.content_length
    if length is not None:
        if length > limit:
            raise PayloadTooLarge.over(limit)
        if "Content-Encoding" not in request.headers:  # else the length is the compressed one
            headers["Content-Length"] = str(length)
    return _bounded(request, limit)


async def _bounded(request: web.Request, limit: int) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in request.content.iter_any():
        seen += len(chunk)
        if seen > limit:
            raise PayloadTooLarge.over(limit)
        yield chunk
