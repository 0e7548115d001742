"""Error bodies exactly as Azure OpenAI (and api.openai.com) word them on the wire.

Azure's own errors are `{"error": {"code", "message"}}` with `code` a string; errors that come
from the OpenAI service behind Azure keep OpenAI's `{message, type, param, code}` shape.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

RESOURCE_NOT_FOUND = "Resource not found"
ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
    "a valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)
DEPLOYMENT_NOT_FOUND = (
    "The API deployment for this resource does not exist. If you created the deployment within "
    "the last 5 minutes, please wait a moment and try again."
)
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
UNPARSABLE_BODY = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON. If you have trouble figuring out how to fix this, please contact "
    "us through our help center at help.openai.com.)"
)
NO_API_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (if "
    "you're accessing the API from your browser and are prompted for a username). You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)

# The operation name Azure puts in its 429 message, by classic route suffix.
OPERATION_NAMES = {
    "chat/completions": "ChatCompletions_Create",
    "completions": "Completions_Create",
    "embeddings": "Embeddings_Create",
}


def azure_error(code: str, message: str) -> JSON:
    """Azure's own error shape."""
    return {"error": {"code": code, "message": message}}


def openai_error(message: str, code: str | None = None, error_type: str | None = None) -> JSON:
    """OpenAI's error shape, also what Azure relays for request validation failures."""
    kind = "invalid_request_error" if error_type is None else error_type
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def azure_rate_limited(operation: str, api_version: str, seconds: int) -> JSON:
    """Azure's 429 body for `operation` ("chat/completions", ...) under `api_version`."""
    name = OPERATION_NAMES.get(operation, "ChatCompletions_Create")
    return azure_error(
        "429",
        f"Requests to the {name} Operation under Azure OpenAI API version {api_version} have "
        "exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after "
        f"{seconds} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like "
        "to further increase the default rate limit.",
    )


def openai_rate_limited(seconds: int) -> JSON:
    """api.openai.com's 429 body."""
    message = f"Rate limit reached for requests. Please try again in {seconds}s."
    return openai_error(message, "rate_limit_exceeded", "requests")


def incorrect_key(key: str) -> JSON:
    """api.openai.com's 401 for a key it does not know; the key is masked as OpenAI masks it."""
    masked = key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 7 else "*" * len(key)
    message = (
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    return openai_error(message, "invalid_api_key")
