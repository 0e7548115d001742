"""Model → deployment mapping: the mapper syntax, the built-ins, resolution."""

from __future__ import annotations

import pytest

from azproxy.mapper import (
    BUILTIN_MAPPING,
    MapperSyntaxError,
    build_mapping,
    parse_mapper,
    resolve_deployment,
)


def test_builtin_mapping_is_the_original_pair_of_models() -> None:
    assert dict(BUILTIN_MAPPING) == {
        "gpt-3.5-turbo": "gpt-35-turbo",
        "gpt-3.5-turbo-0301": "gpt-35-turbo-0301",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "gpt-3.5-turbo=gpt-35-turbo,gpt-4=gpt4-prod",
            {"gpt-3.5-turbo": "gpt-35-turbo", "gpt-4": "gpt4-prod"},
        ),
        (" gpt-4 = gpt4-prod ,  o1 =o1-dep ", {"gpt-4": "gpt4-prod", "o1": "o1-dep"}),
        ("gpt-4=gpt4-prod,", {"gpt-4": "gpt4-prod"}),
        ("gpt-4=gpt4-prod,,o1=o1-dep", {"gpt-4": "gpt4-prod", "o1": "o1-dep"}),
        ("gpt-4=a,gpt-4=b", {"gpt-4": "b"}),
        ("", {}),
        (" , ", {}),
    ],
)
def test_parse_mapper(text: str, expected: dict[str, str]) -> None:
    assert parse_mapper(text) == expected


def test_parse_mapper_with_another_separator() -> None:
    assert parse_mapper("gpt-4|gpt4-prod, o1|o1-dep", separator="|") == {
        "gpt-4": "gpt4-prod",
        "o1": "o1-dep",
    }


@pytest.mark.parametrize(
    ("text", "bad_item"),
    [
        ("gpt-4", "gpt-4"),
        ("=x", "=x"),
        ("gpt-4=", "gpt-4="),
        ("gpt-4= ", "gpt-4="),
        ("a=b,gpt-4", "gpt-4"),
        ("=", "="),
    ],
)
def test_parse_mapper_rejects_a_bad_pair_naming_it(text: str, bad_item: str) -> None:
    with pytest.raises(MapperSyntaxError, match=f"^{bad_item!r} is not a model=deployment pair$"):
        parse_mapper(text)


def test_mapper_syntax_error_is_a_value_error() -> None:
    assert issubclass(MapperSyntaxError, ValueError)


@pytest.mark.parametrize("text", [None, "", "  "])
def test_build_mapping_without_text_is_the_builtins(text: str | None) -> None:
    assert build_mapping(text) == dict(BUILTIN_MAPPING)


def test_build_mapping_adds_to_the_builtins() -> None:
    assert build_mapping("gpt-4=gpt4-prod") == {
        "gpt-3.5-turbo": "gpt-35-turbo",
        "gpt-3.5-turbo-0301": "gpt-35-turbo-0301",
        "gpt-4": "gpt4-prod",
    }


def test_build_mapping_overrides_a_builtin() -> None:
    assert build_mapping("gpt-3.5-turbo=my-35") == {
        "gpt-3.5-turbo": "my-35",
        "gpt-3.5-turbo-0301": "gpt-35-turbo-0301",
    }


def test_build_mapping_leaves_the_builtins_untouched() -> None:
    build_mapping("gpt-3.5-turbo=my-35")["extra"] = "x"
    assert BUILTIN_MAPPING["gpt-3.5-turbo"] == "gpt-35-turbo"
    assert "extra" not in BUILTIN_MAPPING


def test_build_mapping_propagates_syntax_errors() -> None:
    with pytest.raises(MapperSyntaxError, match="'gpt-4'"):
        build_mapping("gpt-3.5-turbo=x,gpt-4")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4", "gpt4-prod"),
        ("gpt-3.5-turbo", "gpt-35-turbo"),
        ("gpt-3.5-turbo-0301", "gpt-35-turbo-0301"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("GPT-4", "GPT-4"),
    ],
)
def test_resolve_deployment(model: str, expected: str) -> None:
    mapping = build_mapping("gpt-4=gpt4-prod")
    assert resolve_deployment(model, mapping) == expected


def test_resolve_deployment_with_an_empty_mapping_is_the_model_name() -> None:
    assert resolve_deployment("text-embedding-3-small", {}) == "text-embedding-3-small"
