"""Model → deployment mapping: parsing the mapper setting and resolving a model.

Pure functions, no I/O: the middleware and `/v1/models` both build on these.
"""

from __future__ import annotations

from collections.abc import Mapping

# The original proxies shipped these two, so their users rely on them without configuring anything.
BUILTIN_MAPPING: Mapping[str, str] = {
    "gpt-3.5-turbo": "gpt-35-turbo",
    "gpt-3.5-turbo-0301": "gpt-35-turbo-0301",
}


class MapperSyntaxError(ValueError):
    """Raised when a `model=deployment` list cannot be parsed."""


def parse_mapper(text: str, *, separator: str = "=") -> dict[str, str]:
    """Parse `a=b, c=d` into `{"a": "b", "c": "d"}`; whitespace trimmed, empty items skipped."""
    mapping: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        model, sep, deployment = item.partition(separator)
        model, deployment = model.strip(), deployment.strip()
        if not sep or not model or not deployment:
            raise MapperSyntaxError(f"{item!r} is not a model{separator}deployment pair")
        mapping[model] = deployment
    return mapping


def build_mapping(text: str | None) -> dict[str, str]:
    """The built-in pairs, extended and overridden by the configured ones."""
    mapping = dict(BUILTIN_MAPPING)
    if text:
        mapping.update(parse_mapper(text))
    return mapping


def resolve_deployment(model: str, mapping: Mapping[str, str]) -> str:
    """The deployment for `model`: its mapped name, else the model's own name."""
    return mapping.get(model, model)
