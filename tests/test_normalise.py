"""The stream normaliser and the non-streaming `model` rewrite, on recorded-shape streams."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from azproxy.normalise import StreamNormaliser, rewrite_model

CLIENT_MODEL = "gpt-4.1"
UPSTREAM_MODEL = "gpt-4.1-2025-04-14"
ID = "chatcmpl-C1AzysR8bQ2kHn0vXgY5mT3aP"

# AZURE.md 4.3: default content filtering mode, one event per line as Azure sends them.
PROMPT_FILTER = (
    '{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":'
    '[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},'
    '"jailbreak":{"detected":false,"filtered":false},'
    '"self_harm":{"filtered":false,"severity":"safe"},'
    '"sexual":{"filtered":false,"severity":"safe"},'
    '"violence":{"filtered":false,"severity":"safe"}}}]}'
)
SAFE = (
    '{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},'
    '"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}'
)
TAIL = (
    f'"created":1754396642,"id":"{ID}","model":"{UPSTREAM_MODEL}",'
    '"object":"chat.completion.chunk","system_fingerprint":"fp_b663f05c2c"'
)
ROLE = (
    '{"choices":[{"content_filter_results":{},"delta":{"content":"","refusal":null,'
    '"role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],' + TAIL + "}"
)
ONE = (
    '{"choices":[{"content_filter_results":' + SAFE + ',"delta":{"content":"One"},'
    '"finish_reason":null,"index":0,"logprobs":null}],' + TAIL + "}"
)
TWO = (
    '{"choices":[{"content_filter_results":' + SAFE + ',"delta":{"content":", two."},'
    '"finish_reason":null,"index":0,"logprobs":null}],' + TAIL + "}"
)
STOP = (
    '{"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0,'
    '"logprobs":null}],' + TAIL + "}"
)
USAGE = (
    '{"choices":[],' + TAIL + ',"usage":{"completion_tokens":382,"prompt_tokens":4297,'
    '"total_tokens":4679,"completion_tokens_details":{"reasoning_tokens":0},'
    '"prompt_tokens_details":{"cached_tokens":0}}}'
)

# AZURE.md 4.4: asynchronous filter mode; annotations have no `delta` and come late.
ASYNC_TAIL = (
    f'"created":1754396700,"id":"{ID}","model":"{UPSTREAM_MODEL}","object":"chat.completion.chunk"'
)
ASYNC_ROLE = (
    '{"choices":[{"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0,'
    '"logprobs":null}],' + ASYNC_TAIL + ',"usage":null}'
)
ASYNC_HELLO = (
    '{"choices":[{"delta":{"content":"Hello"},"finish_reason":null,"index":0,"logprobs":null}],'
    + ASYNC_TAIL
    + ',"usage":null}'
)
ASYNC_STOP = (
    '{"choices":[{"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],'
    + ASYNC_TAIL
    + ',"usage":null}'
)
ANNOTATION = (
    '{"id":"","object":"","created":0,"model":"","choices":[{"index":0,"finish_reason":null,'
    '"content_filter_results":' + SAFE + ',"content_filter_offsets":{"check_offset":44,'
    '"start_offset":44,"end_offset":198}}],"usage":null}'
)
BLOCKED = (
    '{"id":"","object":"","created":0,"model":"","choices":[{"index":0,'
    '"finish_reason":"content_filter","content_filter_results":{"protected_material_text":'
    '{"detected":true,"filtered":true}},"content_filter_offsets":{"check_offset":198,'
    '"start_offset":198,"end_offset":311}}],"usage":null}'
)
BLOCKED_FINAL = (
    f'{{"id":"{ID}","object":"chat.completion.chunk","created":1754396700,'
    f'"model":"{CLIENT_MODEL}","choices":[{{"index":0,"delta":{{}},'
    '"finish_reason":"content_filter","logprobs":null}],"usage":null}'
)

# AZURE.md 4.2: what OpenAI itself sends, with include_usage.
OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
OPENAI_HEAD = (
    '{"id":"chatcmpl-D0q8CjW2","object":"chat.completion.chunk","created":1769092764,'
    f'"model":"{OPENAI_MODEL}","service_tier":"default","system_fingerprint":"fp_29330a9688",'
)
OPENAI_STREAM = [
    OPENAI_HEAD + '"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
    '"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"kq3"}',
    OPENAI_HEAD + '"choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,'
    '"finish_reason":null}],"usage":null,"obfuscation":"ZGF"}',
    OPENAI_HEAD + '"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],'
    '"usage":null,"obfuscation":"p"}',
    OPENAI_HEAD + '"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,'
    '"total_tokens":10},"obfuscation":"Qx9"}',
    "[DONE]",
]

# Legacy completions: `text` choices, no `delta`.
LEGACY_TAIL = '"created":1754396800,"model":"gpt-35-turbo-instruct","object":"text_completion"'
LEGACY_PROMPT_FILTER = (
    '{"id":"","object":"","created":0,"model":"","prompt_filter_results":[{"prompt_index":0,'
    '"content_filter_results":' + SAFE + "}],"
    '"choices":[]}'
)
LEGACY_TEXT = (
    '{"id":"cmpl-9xQe","choices":[{"text":"Once","index":0,"finish_reason":null,"logprobs":null,'
    '"content_filter_results":' + SAFE + "}]," + LEGACY_TAIL + "}"
)
LEGACY_STOP = (
    '{"id":"cmpl-9xQe","choices":[{"text":"","index":0,"finish_reason":"length",'
    '"logprobs":null}],' + LEGACY_TAIL + "}"
)


def sse(*payloads: str, separator: str = "\n\n") -> bytes:
    """A stream of one `data:` event per payload."""
    return "".join(f"data: {payload}{separator}" for payload in payloads).encode()


def client_side(payload: str, model: str = CLIENT_MODEL, upstream: str = UPSTREAM_MODEL) -> str:
    """`payload` as the client should see it: only `model` differs."""
    rewritten = payload.replace(f'"model":"{upstream}"', f'"model":"{model}"')
    assert rewritten != payload
    return rewritten


def run(stream: bytes, model: str = CLIENT_MODEL) -> bytes:
    normaliser = StreamNormaliser(model)
    return normaliser.feed(stream) + normaliser.flush()


DEFAULT_MODE = sse(PROMPT_FILTER, ROLE, ONE, TWO, STOP, "[DONE]")
DEFAULT_MODE_WITH_USAGE = sse(PROMPT_FILTER, ROLE, ONE, TWO, STOP, USAGE, "[DONE]")
ASYNC_MODE = sse(
    PROMPT_FILTER, ASYNC_ROLE, ASYNC_HELLO, ASYNC_STOP, ANNOTATION, ANNOTATION, "[DONE]"
)
ASYNC_MODE_BLOCKED = sse(PROMPT_FILTER, ASYNC_ROLE, ASYNC_HELLO, ANNOTATION, BLOCKED, "[DONE]")
LEGACY = sse(LEGACY_PROMPT_FILTER, LEGACY_TEXT, LEGACY_STOP, ANNOTATION, BLOCKED, "[DONE]")
MIXED = (
    b": keep-alive\n\n"
    + sse(PROMPT_FILTER, ROLE, separator="\r\n\r\n")
    + b'data: {"choices":[{"delta":{"content":"x"},"index":0}],\r\ndata: "model":"m","id":"i"}\r\r'
    + b": comment\nevent: message\ndata:"
    + ONE.encode()
    + b"\nid: 7\n\n"
    + b"data: not json\n\n"
    + sse(ANNOTATION, BLOCKED, "[DONE]", separator="\r\n\r\n")
)


def test_default_mode_loses_the_prompt_filter_event_and_the_upstream_model() -> None:
    assert run(DEFAULT_MODE) == sse(
        client_side(ROLE), client_side(ONE), client_side(TWO), client_side(STOP), "[DONE]"
    )


def test_default_mode_keeps_the_usage_event() -> None:
    assert run(DEFAULT_MODE_WITH_USAGE) == sse(
        client_side(ROLE),
        client_side(ONE),
        client_side(TWO),
        client_side(STOP),
        client_side(USAGE),
        "[DONE]",
    )


def test_prompt_filter_event_with_null_usage_is_dropped() -> None:
    with_null_usage = PROMPT_FILTER[:-1] + ',"usage":null}'
    assert run(sse(with_null_usage, ROLE)) == sse(client_side(ROLE))


def test_old_prompt_annotations_event_is_dropped() -> None:
    old = PROMPT_FILTER.replace("prompt_filter_results", "prompt_annotations")
    assert run(sse(old, "[DONE]")) == sse("[DONE]")


def test_async_mode_drops_annotations_after_the_stop_event() -> None:
    assert run(ASYNC_MODE) == sse(
        client_side(ASYNC_ROLE), client_side(ASYNC_HELLO), client_side(ASYNC_STOP), "[DONE]"
    )


def test_async_mode_blocked_output_ends_like_openai() -> None:
    assert run(ASYNC_MODE_BLOCKED) == sse(
        client_side(ASYNC_ROLE), client_side(ASYNC_HELLO), BLOCKED_FINAL, "[DONE]"
    )


def test_blocked_annotation_keeps_only_its_filtered_choices() -> None:
    two_choices = BLOCKED.replace(
        '"choices":[', '"choices":[{"index":1,"finish_reason":null,"content_filter_results":{}},'
    ).replace(
        '"index":0,"finish_reason":"content_filter"', '"index":2,"finish_reason":"content_filter"'
    )
    (event,) = parse(run(sse(ASYNC_ROLE, two_choices))[len(sse(client_side(ASYNC_ROLE))) :])
    assert event["choices"] == [
        {"index": 2, "delta": {}, "finish_reason": "content_filter", "logprobs": None}
    ]
    assert (event["id"], event["object"], event["model"]) == (
        ID,
        "chat.completion.chunk",
        CLIENT_MODEL,
    )


def test_blocked_before_any_content_still_gets_the_chunk_object_and_model() -> None:
    (event,) = parse(run(sse(BLOCKED)))
    assert event == {
        "id": "",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": CLIENT_MODEL,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter", "logprobs": None}],
        "usage": None,
    }


def test_annotation_choice_beside_a_delta_choice_is_dropped_alone() -> None:
    both = ASYNC_HELLO.replace(
        '"choices":[', '"choices":[{"index":1,"finish_reason":null,"content_filter_results":{}},'
    )
    assert run(sse(both)) == sse(client_side(ASYNC_HELLO))


def test_openai_stream_only_has_its_model_rewritten() -> None:
    stream = sse(*OPENAI_STREAM)
    expected = sse(*[client_side(p, "gpt-4o-mini", OPENAI_MODEL) for p in OPENAI_STREAM[:-1]])
    assert run(stream, "gpt-4o-mini") == expected + b"data: [DONE]\n\n"


def test_stream_already_in_the_clients_model_passes_through_byte_for_byte() -> None:
    stream = sse(*OPENAI_STREAM).replace(b"\n\n", b"\n\n: keep-alive\n\n", 1)
    assert run(stream, OPENAI_MODEL) == stream


def test_empty_client_model_keeps_the_upstream_model() -> None:
    out = parse(run(ASYNC_MODE_BLOCKED, ""))
    assert [event["model"] for event in out] == [UPSTREAM_MODEL] * 3
    assert out[-1]["choices"][0]["finish_reason"] == "content_filter"


def test_legacy_completions_stream() -> None:
    legacy_final = (
        '{"id":"cmpl-9xQe","object":"text_completion","created":1754396800,'
        '"model":"gpt-35-turbo-instruct-0914","choices":[{"index":0,"text":"",'
        '"finish_reason":"content_filter","logprobs":null}],"usage":null}'
    )
    assert run(LEGACY, "gpt-35-turbo-instruct-0914") == sse(
        LEGACY_TEXT.replace("gpt-35-turbo-instruct", "gpt-35-turbo-instruct-0914"),
        LEGACY_STOP.replace("gpt-35-turbo-instruct", "gpt-35-turbo-instruct-0914"),
        legacy_final,
        "[DONE]",
    )


def test_crlf_stream() -> None:
    stream = sse(PROMPT_FILTER, ROLE, ONE, ANNOTATION, "[DONE]", separator="\r\n\r\n")
    assert run(stream) == sse(client_side(ROLE), client_side(ONE)) + b"data: [DONE]\r\n\r\n"


def test_cr_stream() -> None:
    stream = sse(PROMPT_FILTER, ROLE, "[DONE]", separator="\r\r")
    assert run(stream) == sse(client_side(ROLE)) + b"data: [DONE]\r\r"


def test_multi_line_data_is_joined_with_newlines_and_sent_as_one_line() -> None:
    stream = b'data: {"id":"x","model":"m",\ndata\ndata:"choices":[]\r\ndata: ,"usage":{}}\n\n'
    assert run(stream) == b'data: {"id":"x","model":"gpt-4.1","choices":[],"usage":{}}\n\n'


def test_other_lines_of_a_rewritten_event_stay_in_place() -> None:
    stream = b": c\nevent: message\ndata: " + ONE.encode() + b"\nid: 7\n\n"
    expected = b": c\nevent: message\ndata: " + client_side(ONE).encode() + b"\nid: 7\n\n"
    assert run(stream) == expected


def test_multi_line_data_that_is_not_json_passes_through() -> None:
    stream = b": c\ndata: {\ndata: " + ONE.encode() + b"\nid: 7\ndata: }\n\n"
    assert run(stream) == stream


def test_data_without_a_space_is_read() -> None:
    assert run(b"data:" + ROLE.encode() + b"\n\n") == sse(client_side(ROLE))


@pytest.mark.parametrize(
    "stream",
    [
        b": keep-alive\n\n",
        b":\n\n",
        b"event: ping\n\n",
        b"\n\n",
        b"data: [DONE]\n\n",
        b"data:[DONE]\r\n\r\n",
        b"data: not json\n\n",
        b'data: ["model", "m"]\n\n',
        b'data: "model"\n\n',
        b"data: 42\n\n",
        b'data: {"model":"gpt\n\n',
        b"data: \xff\xfe\n\n",
        b"data: {}\n\n",
        b'data: {"error":{"message":"upstream failed","type":"server_error","code":null}}\n\n',
        b'data: {"id":"","model":"","choices":[{"index":0,"delta":{"content":"x"}}]}\n\n',
        b'datum: {"model":"gpt-4.1-2025-04-14"}\n\n',
    ],
)
def test_passes_through_unchanged(stream: bytes) -> None:
    assert run(stream) == stream


def test_complete_events_are_never_held() -> None:
    stream = DEFAULT_MODE_WITH_USAGE
    normaliser = StreamNormaliser(CLIENT_MODEL)
    sent = b""
    start = 0
    while (end := stream.find(b"\n\n", start)) >= 0:
        sent += normaliser.feed(stream[start : end + 2])
        assert sent == run(stream[: end + 2])
        start = end + 2
    assert normaliser.flush() == b""


def test_an_incomplete_event_waits_for_its_end() -> None:
    normaliser = StreamNormaliser(CLIENT_MODEL)
    assert normaliser.feed(sse(ROLE)[:-1]) == b""
    assert normaliser.feed(b"") == b""
    assert normaliser.feed(b"\n") == sse(client_side(ROLE))
    assert normaliser.feed(b"") == b""


SPLIT_STREAMS = {
    "default": DEFAULT_MODE_WITH_USAGE,
    "async": ASYNC_MODE,
    "blocked": ASYNC_MODE_BLOCKED,
    "legacy": LEGACY,
    "crlf": sse(PROMPT_FILTER, ROLE, ONE, STOP, USAGE, "[DONE]", separator="\r\n\r\n"),
    "mixed": MIXED,
}


@pytest.mark.parametrize("stream", SPLIT_STREAMS.values(), ids=SPLIT_STREAMS.keys())
def test_same_output_however_the_stream_is_split(stream: bytes) -> None:
    whole = run(stream)
    for cut in range(len(stream) + 1):
        normaliser = StreamNormaliser(CLIENT_MODEL)
        halves = normaliser.feed(stream[:cut]) + normaliser.feed(stream[cut:])
        assert halves + normaliser.flush() == whole, cut
    normaliser = StreamNormaliser(CLIENT_MODEL)
    out = b"".join(normaliser.feed(stream[i : i + 1]) for i in range(len(stream)))
    assert out + normaliser.flush() == whole
    rng = random.Random(len(stream))
    for _ in range(50):
        cuts = sorted(rng.sample(range(len(stream) + 1), 6))
        normaliser = StreamNormaliser(CLIENT_MODEL)
        pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        out = b"".join(normaliser.feed(piece) for piece in pieces)
        assert out + normaliser.flush() == whole, cuts


def test_mixed_stream() -> None:
    assert run(MIXED) == (
        b": keep-alive\n\n"
        + sse(client_side(ROLE))
        + b'data: {"choices":[{"delta":{"content":"x"},"index":0}],"model":"gpt-4.1","id":"i"}'
        + b"\n\n: comment\nevent: message\ndata: "
        + client_side(ONE).encode()
        + b"\nid: 7\n\n"
        + b"data: not json\n\n"
        + sse(BLOCKED_FINAL.replace("1754396700", "1754396642"))
        + b"data: [DONE]\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        (b"data: " + ROLE.encode(), b"data: " + client_side(ROLE).encode()),
        (b"data: " + ROLE.encode() + b"\n", b"data: " + client_side(ROLE).encode() + b"\n"),
        (b"data: " + ROLE.encode() + b"\r\n\r", b"data: " + client_side(ROLE).encode() + b"\r\n\r"),
        (b"data: " + PROMPT_FILTER.encode(), b""),
        (b"data: [DONE]", b"data: [DONE]"),
        (b"data: [DONE]\n", b"data: [DONE]\n"),
        (b'data: {"trunc', b'data: {"trunc'),
        (b": keep", b": keep"),
        (b"\n", b"\n"),
    ],
)
def test_flush_passes_an_unterminated_last_event(held: bytes, expected: bytes) -> None:
    normaliser = StreamNormaliser(CLIENT_MODEL)
    assert normaliser.feed(sse(ROLE) + held) == sse(client_side(ROLE))
    assert normaliser.flush() == expected
    assert normaliser.flush() == b""


def test_flush_with_nothing_held() -> None:
    normaliser = StreamNormaliser(CLIENT_MODEL)
    assert normaliser.flush() == b""
    assert normaliser.feed(sse(ROLE)) == sse(client_side(ROLE))
    assert normaliser.flush() == b""


def parse(out: bytes) -> list[dict[str, Any]]:
    """The JSON events of a normalised stream, which are all single `data:` lines."""
    events = []
    for event in out.split(b"\n\n")[:-1]:
        assert event.startswith(b"data: ")
        if event != b"data: [DONE]":
            events.append(orjson.loads(event[6:]))
    return events


CHAT_COMPLETION = (
    b'{"choices":[{"content_filter_results":{},"finish_reason":"stop","index":0,"logprobs":null,'
    b'"message":{"content":"Hi","role":"assistant"}}],"created":1754396642,"id":"chatcmpl-1",'
    b'"model":"gpt-4.1-2025-04-14","object":"chat.completion","prompt_filter_results":[],'
    b'"usage":{"completion_tokens":1,"prompt_tokens":8,"total_tokens":9}}'
)


def test_rewrite_model_keeps_everything_else_in_order() -> None:
    assert rewrite_model(CHAT_COMPLETION, "gpt-4.1") == CHAT_COMPLETION.replace(
        b'"model":"gpt-4.1-2025-04-14"', b'"model":"gpt-4.1"'
    )


def test_rewrite_model_of_a_pretty_printed_body() -> None:
    body = b'{\n  "object": "list",\n  "model": "text-embedding-3-small",\n  "data": []\n}\n'
    assert rewrite_model(body, "emb") == body.replace(b"text-embedding-3-small", b"emb")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # "model" elsewhere too: the body is re-encoded, the nested one untouched.
        (
            b'{"data":[{"model":"a"}], "model":"a"}',
            b'{"data":[{"model":"a"}],"model":"gpt-4.1"}',
        ),
        (
            b'{"content":"say \\"model", "model":"a"}',
            b'{"content":"say \\"model","model":"gpt-4.1"}',
        ),
        # An escaped quote before the word alone does not make a second occurrence.
        (
            b'{"content":"\\"model\\" is a word", "model":"a"}',
            b'{"content":"\\"model\\" is a word", "model":"gpt-4.1"}',
        ),
        # Azure's escaping differs from orjson's: re-encoded, value decoded correctly.
        (b'{"model": "caf\\u00e9"}', b'{"model":"gpt-4.1"}'),
        # Non-ASCII model names are spliced as UTF-8.
        (b'{"id":"x","model":"caf\xc3\xa9"}', b'{"id":"x","model":"gpt-4.1"}'),
    ],
)
def test_rewrite_model_when_model_is_not_alone(body: bytes, expected: bytes) -> None:
    assert rewrite_model(body, "gpt-4.1") == expected


@pytest.mark.parametrize(
    "body",
    [
        CHAT_COMPLETION.replace(b"gpt-4.1-2025-04-14", b"gpt-4.1"),
        b'{"object":"list","data":[{"id":"gpt-4.1","model":"x"}]}',
        b'{"error":{"message":"nope","type":"invalid_request_error"}}',
        b'[{"model":"x"}]',
        b'"model"',
        b"",
        b"not json",
        b'{"model":"x"',
        b"\xff",
    ],
)
def test_rewrite_model_leaves_other_bodies_alone(body: bytes) -> None:
    assert rewrite_model(body, "gpt-4.1") is body
