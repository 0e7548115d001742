"""Reading what a client asks for out of a JSON body, parsed once."""

from __future__ import annotations

from typing import Any

import orjson

from .errors import InvalidRequest


def parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or `InvalidRequest` (400) saying what is wrong."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. Send a JSON object with "
            "'Content-Type: application/json'.",
            code="invalid_json",
        ) from None
    if not isinstance(payload, dict):
        raise InvalidRequest(
            f"The request body must be a JSON object, not {type(payload).__name__}.",
            code="invalid_json",
        )
    return payload


def model_of(payload: dict[str, Any]) -> str:
    """The `model` field, which must be a non-empty string."""
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest(
            "You must provide a model parameter: a string such as 'gpt-4o'.",
            param="model",
            code="missing_model" if model is None else "invalid_model",
        )
    return model
