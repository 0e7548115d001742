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

# The operation name Azure puts in its 429 message, by route suffix (the spec's operationIds
# where it has them).
OPERATION_NAMES = {
    "chat/completions": "ChatCompletions_Create",
    "completions": "Completions_Create",
    "embeddings": "Embeddings_Create",
    "audio/transcriptions": "Transcriptions_Create",
    "audio/translations": "Translations_Create",
    "audio/speech": "Speech_Create",
    "images/generations": "ImageGenerations_Create",
    "images/edits": "ImageEdits_Create",
    "responses": "Responses_Create",
    "files": "Files_Upload",
    "batches": "Batch_Create",
    "fine_tuning/jobs": "FineTuning_Create",
    "vector_stores": "VectorStores_Create",
    "realtime": "Realtime_Connect",
}


def azure_error(code: str, message: str) -> JSON:
    """Azure's own error shape."""
    return {"error": {"code": code, "message": message}}


def openai_error(message: str, code: str | None = None, error_type: str | None = None) -> JSON:
    """OpenAI's error shape, also what Azure relays for request validation failures."""
    kind = "invalid_request_error" if error_type is None else error_type
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> JSON:
    """A request validation error naming the offending parameter, OpenAI-shaped."""
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


def missing_property(name: str) -> JSON:
    """The validation error for a missing required body or form field."""
    return invalid_request(f"'{name}' is a required property", name)


def invalid_value(name: str, value: object, allowed: tuple[str, ...]) -> JSON:
    """The validation error for a field outside its allowed values."""
    choices = ", ".join(f"'{a}'" for a in allowed)
    message = f"Invalid value: '{value}'. Supported values are: {choices}."
    return invalid_request(message, name, "invalid_value")


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
