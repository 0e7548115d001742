"""The models the emulated resource offers, and the model behind a deployment name."""

from __future__ import annotations

from .errors import JSON

# Model name → version, as Azure's model catalogue and ARM deployments name them.
MODELS = {
    "gpt-4o": "2024-11-20",
    "gpt-4o-mini": "2024-07-18",
    "gpt-4.1": "2025-04-14",
    "gpt-35-turbo": "0125",
    "gpt-35-turbo-instruct": "0914",
    "text-embedding-3-small": "1",
    "text-embedding-3-large": "1",
    "text-embedding-ada-002": "2",
    "whisper": "001",
    "tts": "001",
    "dall-e-3": "3.0",
    "gpt-image-1": "2025-04-15",
    "gpt-realtime": "2025-08-28",
}
DEFAULT_DEPLOYMENTS = ("gpt-4o", "gpt-35-turbo", "text-embedding-3-small")
DEFAULT_MODEL = "gpt-4o"
CREATED = 1715367049  # a fixed "created" for every listed model


def model_of(deployment: str) -> tuple[str, str]:
    """The (model, version) a deployment serves: the longest known model its name starts
    with (deployments are usually named after their model), else gpt-4o."""
    known = [m for m in MODELS if deployment.lower().startswith(m)]
    name = max(known, key=len) if known else DEFAULT_MODEL
    return name, MODELS[name]


def model_object(name: str) -> JSON:
    """One model as the OpenAI-shaped v1 `/models` lists it."""
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "system"}
