r"""Making Azure's chat-completion streams look exactly like OpenAI's, event by event.

`StreamNormaliser` rewrites an Azure chat-completions (or legacy completions) SSE byte stream
into what OpenAI would have sent; `rewrite_model` gives non-streaming bodies the same `model`
rewrite. What changes, exactly:

Framing.
- An event ends at a blank line: `\n\n`, `\r\n\r\n` or `\r\r`. A complete event is
  rewritten and released by the same `feed` call that completes it; only an incomplete trailing
  event is held, until its end arrives. Events may be split across reads at any byte.
- Only `data:` lines are interpreted. An event with several `data:` lines is read as their
  values joined with `\n` (the SSE rule); one leading space after `data:` is not part of the
  value.
- Passed through unchanged, byte for byte: `data: [DONE]`, comments (`:` lines) and other events
  without data, events whose data is not a JSON object, and JSON events that no rule changes.
- A rewritten event is sent as `data: <compact JSON>\n\n`, keys in the order Azure sent them.
  Any other lines of the event (comments, `event:`, `id:`) are kept in place; its `data:` lines
  become one.

Rules, applied in order to each JSON-object event.
1. The prompt-filter event is dropped: `choices` is `[]` and `usage` is absent or null. This
   covers Azure's first event (`prompt_filter_results`, or `prompt_annotations` in old previews).
2. A choice that has neither `delta` nor `text` is an asynchronous content-filter annotation.
   If its `finish_reason` is `"content_filter"` it becomes
   `{"index": i, "delta": {}, "finish_reason": "content_filter", "logprobs": null}`, and the event
   takes the `id` and `created` of the last event with a non-empty `id` (if there was one),
   and `object: "chat.completion.chunk"`. In a legacy completions stream (that last event had
   `object: "text_completion"`) it becomes `{"index": i, "text": "", "finish_reason":
   "content_filter", "logprobs": null}` under `object: "text_completion"` instead. Any other
   annotation choice is dropped, and an event left with no choices is dropped. Choices with
   `delta` (chat) or `text` (legacy completions) are never treated as annotations.
3. The usage event (`choices` is `[]`, `usage` is not null) is kept.
4. `model` is set to the name the client asked for on every event that carries a non-empty
   `model`, and on the events rule 2 completes. (An empty client model turns this rule off;
   rule 2 then uses the `model` of the last event with a non-empty `id`.)
5. Nothing else changes: `content_filter_results`, `content_filter_offsets` and other extra keys
   on normal choices stay, as they are harmless to OpenAI clients, and so do empty `id`s on
   events that no rule touches.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

__all__ = ["StreamNormaliser", "rewrite_model"]

_DONE: Final = b"[DONE]"
_LINE_ENDS: Final = b"\r\n"
# The separators that end an event, and the longest one's length less one: how far back a
# separator straddling two reads can start.
_SEPARATORS: Final = (b"\n\n", b"\r\n\r\n", b"\r\r")
_STRADDLE: Final = 3
# `_rewrite`'s verdicts besides new event text.
_PASS: Final = None
_DROP: Final = b""

_CHAT_CHUNK: Final = "chat.completion.chunk"
_TEXT_COMPLETION: Final = "text_completion"


class StreamNormaliser:
    """One upstream stream's rewriter; the relay feeds it every read, then flushes it once."""

    __slots__ = ("_buffer", "_client_model", "_last")

    def __init__(self, client_model: str) -> None:
        self._client_model = client_model
        self._buffer = bytearray()
        # The last event with a non-empty `id`, whose identity a completed annotation takes on.
        # Only the keys rule 4 leaves alone are read from it.
        self._last: dict[str, Any] | None = None

    def feed(self, chunk: bytes) -> bytes:
        """Bytes ready to send to the client now: every event completed by `chunk`, rewritten.

        An incomplete trailing event is held until its end arrives (never longer).
        """
        buffer = self._buffer
        data: bytes | bytearray
        if buffer:
            # No separator was complete in what is held, so only one straddling the join or
            # lying in the new bytes can end the held event.
            scan = max(len(buffer) - _STRADDLE, 0)
            buffer += chunk
            data = buffer
        else:
            scan = 0
            data = chunk
        out: list[bytes] = []
        if data.find(b"\r", scan) < 0:
            consumed = self._split_lf(data, scan, out)
        else:
            consumed = self._split_any(data, scan, out)
        if data is buffer:
            del buffer[:consumed]
        elif consumed < len(chunk):
            buffer += memoryview(chunk)[consumed:]
        return b"".join(out)

    def flush(self) -> bytes:
        """At the end of the upstream stream: whatever is held (an unterminated last event),
        passed through as is (rewritten if it parses), with no terminator added — the relay
        adds it."""
        if not self._buffer:
            return b""
        held = bytes(self._buffer)
        self._buffer.clear()
        body = held.rstrip(_LINE_ENDS)
        event = self._rewrite(body)
        if event is _PASS:
            return held
        if not event:
            return _DROP
        # Keep the fragment of a terminator the stream ended with, as passing through would.
        return event + held[len(body) :]

    def _split_lf(self, data: bytes | bytearray, scan: int, out: list[bytes]) -> int:
        """Release the events in `data` when no carriage return can take part in a separator."""
        start = 0
        end = data.find(b"\n\n", scan)
        while end >= 0:
            self._emit(data, start, end, end + 2, out)
            start = end + 2
            end = data.find(b"\n\n", start)
        return start

    def _split_any(self, data: bytes | bytearray, scan: int, out: list[bytes]) -> int:
        """Release the events in `data`, ending each at the earliest of the separators."""
        # The next occurrence of each separator; each is searched for again only once passed,
        # so every byte is scanned at most once per separator.
        found = [data.find(separator, scan) for separator in _SEPARATORS]
        start = 0
        while True:
            end = -1
            length = 0
            for position, separator in zip(found, _SEPARATORS, strict=True):
                if position >= 0 and (end < 0 or position < end):
                    end = position
                    length = len(separator)
            if end < 0:
                return start
            self._emit(data, start, end, end + length, out)
            start = end + length
            for i, position in enumerate(found):
                if 0 <= position < start:
                    found[i] = data.find(_SEPARATORS[i], start)

    def _emit(
        self, data: bytes | bytearray, start: int, end: int, after: int, out: list[bytes]
    ) -> None:
        """Add the event `data[start:end]`, terminated at `after`, to `out` as it should go."""
        event = self._rewrite(bytes(data[start:end]))
        if event is _PASS:
            out.append(bytes(data[start:after]))
        elif event:
            out.append(event)
            out.append(b"\n\n")

    def _rewrite(self, body: bytes) -> bytes | None:
        """The event `body` (no terminator) as it should go: None to pass it through unchanged,
        `b""` to drop it, else its new text (no terminator)."""
        lines: list[bytes] | None = None
        if body.startswith(b"data:") and b"\n" not in body and b"\r" not in body:
            # The hot path: one `data:` line, as Azure sends every event.
            payload = body[6:] if body[5:6] == b" " else body[5:]
        else:
            lines = body.splitlines()
            values = []
            for line in lines:
                colon = line.find(b":")
                name = line if colon < 0 else line[:colon]
                if name == b"data":
                    value = b"" if colon < 0 else line[colon + 1 :]
                    values.append(value[1:] if value[:1] == b" " else value)
            if not values:
                return _PASS
            payload = b"\n".join(values)
        if payload == _DONE:
            return _PASS
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return _PASS
        if not isinstance(event, dict):
            return _PASS
        verdict = self._normalise(event)
        if verdict is None:
            return _PASS
        if not verdict:
            return _DROP
        data_line = b"data: " + orjson.dumps(verdict)
        if lines is None:
            return data_line
        # Other lines stay where they were; the data lines become one, at the first's place.
        kept: list[bytes] = []
        for line in lines:
            colon = line.find(b":")
            if (line if colon < 0 else line[:colon]) != b"data":
                kept.append(line)
            elif data_line:
                kept.append(data_line)
                data_line = b""
        return b"\n".join(kept)

    def _normalise(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Apply the rules to one event: None if unchanged, `{}` to drop it, else the event."""
        event_id = event.get("id")
        if event_id and isinstance(event_id, str):
            self._last = event
        changed = False
        choices = event.get("choices")
        if isinstance(choices, list):
            if not choices:
                if event.get("usage") is None:
                    return {}  # rule 1
            else:
                for choice in choices:
                    if isinstance(choice, dict) and "delta" not in choice and "text" not in choice:
                        kept = self._annotations(event, choices)  # rule 2
                        if not kept:
                            return {}
                        event["choices"] = kept
                        changed = True
                        break
        client_model = self._client_model
        if client_model:
            model = event.get("model")
            if model and model != client_model and isinstance(model, str):
                event["model"] = client_model  # rule 4
                changed = True
        return event if changed else None

    def _annotations(self, event: dict[str, Any], choices: list[Any]) -> list[Any]:
        """The choices to keep of an event with annotation choices, completing the
        `content_filter` ones; the event takes the stream's identity if one is completed."""
        last = self._last
        legacy = last is not None and last.get("object") == _TEXT_COMPLETION
        kept: list[Any] = []
        completed = False
        for i, choice in enumerate(choices):
            if isinstance(choice, dict) and "delta" not in choice and "text" not in choice:
                if choice.get("finish_reason") == "content_filter":
                    index = choice.get("index", i)
                    if legacy:
                        final = {"index": index, "text": "", "finish_reason": "content_filter"}
                    else:
                        final = {"index": index, "delta": {}, "finish_reason": "content_filter"}
                    final["logprobs"] = None
                    kept.append(final)
                    completed = True
            else:
                kept.append(choice)
        if completed:
            if last is not None:
                event["id"] = last["id"]
                if last.get("created") is not None:
                    event["created"] = last["created"]
            event["object"] = _TEXT_COMPLETION if legacy else _CHAT_CHUNK
            model = self._client_model or (last.get("model") if last is not None else None)
            if model and isinstance(model, str):
                event["model"] = model
        return kept


def rewrite_model(body: bytes, client_model: str) -> bytes:
    """A non-streaming JSON body with top-level `model` set to client_model (returned unchanged
    if not a JSON object with a `model` key)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(payload, dict) or "model" not in payload:
        return body
    current = payload["model"]
    if current == client_model:
        return body
    if isinstance(current, str) and (spliced := _splice_model(body, current, client_model)):
        return spliced
    payload["model"] = client_model
    return orjson.dumps(payload)


def _splice_model(body: bytes, current: str, client_model: str) -> bytes | None:
    """`body` with only the bytes of the top-level model's value replaced, or None if they
    cannot be found for certain.

    Cheaper than re-encoding the whole body, and every other byte stays as Azure sent it.
    The top-level key accounts for one `"model"` in the bytes; when it is the only one, it
    is that key (a string that merely contains the word would add a second occurrence).
    """
    if body.count(b'"model"') != 1:
        return None
    at = body.index(b'"model"') + len(b'"model"')
    while at < len(body) and body[at] in b" \t\r\n:":
        at += 1
    old = orjson.dumps(current)
    if not body.startswith(old, at):
        return None  # Azure escaped the value differently than orjson would
    return body[:at] + orjson.dumps(client_model) + body[at + len(old) :]
