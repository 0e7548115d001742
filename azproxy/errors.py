"""Errors the gateway itself produces, and their OpenAI-shaped JSON.

Upstream errors are relayed as Azure sent them; only failures of the gateway's own making
come from this tree::

    GatewayError                    any error azproxy answers itself
    ├── InvalidRequest          400 the request is malformed
    ├── AuthenticationFailed    401 no usable credentials
    ├── NotFound                404 unknown path or model
    ├── MethodNotAllowed        405 known path, wrong method
    ├── PayloadTooLarge         413 body over the configured limit
    ├── NotImplementedYet       501 an operation azproxy does not relay yet
    ├── UpstreamUnreachable     502 Azure could not be reached
    └── UpstreamTimeout         504 Azure did not answer in time
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson


class GatewayError(Exception):
    """Base of every error azproxy answers itself; carries the OpenAI error fields."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI error object, `{"error": {...}}`."""
        return error_body(self.message, self.error_type, self.param, self.code)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


class InvalidRequest(GatewayError):
    """Raised for a body or parameter the gateway cannot forward."""

    status = 400
    error_type = "invalid_request_error"


class AuthenticationFailed(GatewayError):
    """Raised when no credentials can be resolved, or a triple key is malformed."""

    status = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class NotFound(GatewayError):
    """Raised for a path the gateway does not serve or a model it does not know."""

    status = 404
    error_type = "invalid_request_error"


class MethodNotAllowed(GatewayError):
    """Raised for a known path called with a method it does not accept."""

    status = 405
    error_type = "invalid_request_error"
    default_code = "method_not_allowed"


class PayloadTooLarge(GatewayError):
    """Raised when the request body exceeds AZURE_OPENAI_PROXY_MAX_BODY."""

    @classmethod
    def over(cls, limit: int) -> PayloadTooLarge:
        return cls(f"The request body is larger than {limit} bytes (AZURE_OPENAI_PROXY_MAX_BODY).")

    status = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class NotImplementedYet(GatewayError):
    """Raised for an operation azproxy knows but does not relay yet."""

    status = 501
    error_type = "invalid_request_error"
    default_code = "not_implemented"


class UpstreamUnreachable(GatewayError):
    """Raised when the connection to the upstream fails."""

    status = 502
    error_type = "upstream_error"
    default_code = "upstream_unreachable"


class UpstreamTimeout(GatewayError):
    """Raised when the upstream does not send its response headers in time."""

    status = 504
    error_type = "upstream_error"
    default_code = "upstream_timeout"


def error_body(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """Build `{"error": {"message", "type", "param", "code"}}` as OpenAI does."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}
