"""Finding the `model` field of a multipart upload without holding the upload in memory.

OpenAI clients put `model` anywhere among the form fields (openai-python before the file,
openai-node often after it), yet the gateway needs it before it can pick the deployment and
open the upstream request. `scan_for_model` reads the raw body until the `model` part's value
is complete, spooling what came before it (in memory up to a small size, then to a temporary
file); `ScannedUpload.body` then replays those bytes and streams the rest from the client as
it arrives. Nothing is re-encoded: the boundary and every byte other than the (optionally
replaced) model value reach Azure exactly as the client sent them.

Errors, all `ValueError`s so they never pass for I/O trouble::

    MultipartError          malformed body: no boundary, bad delimiter, truncated, oversized headers
    ├── ModelNotFound       well-formed, but no (or an empty) `model` field
    └── BodyTooLarge        more bytes than `max_body`
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from email.message import Message
from tempfile import SpooledTemporaryFile
from typing import Protocol
from urllib.parse import unquote

__all__ = (
    "BodyTooLarge",
    "ByteSource",
    "ModelNotFound",
    "MultipartError",
    "ScannedUpload",
    "boundary_of",
    "scan_for_model",
)

CHUNK = 64 * 1024
"""The most bytes asked of the source at once."""

MAX_FILE_MODEL = 256
"""Cap on a `model` part sent as a file (`filename=`): it is still read as text."""

_CRLF = b"\r\n"
_LWSP = b" \t"
# RFC 9110 token characters, for Content-Disposition parameter names.
_PARAM = re.compile(
    rb""";\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)""",
)
_QUOTED_PAIR = re.compile(rb"\\(.)")


class MultipartError(ValueError):
    """Raised for a malformed multipart body: no boundary, truncated, part headers too long."""


class ModelNotFound(MultipartError):
    """Raised when the body ends without a `model` field, or its value is empty."""


class BodyTooLarge(MultipartError):
    """Raised when the body exceeds `max_body`, during the scan or while streaming it on."""


class ByteSource(Protocol):
    """What the scanner reads from: `aiohttp.StreamReader` (`request.content`) fits."""

    async def read(self, n: int = -1) -> bytes: ...


@dataclass(eq=False, kw_only=True)
class _Reader:
    """The source with its byte accounting, shared by the scan and the replay."""

    source: ByteSource
    content_length: int | None
    max_body: int
    total: int = 0
    eof: bool = False

    async def read(self) -> bytes:
        if self.eof:
            return b""
        chunk = await self.source.read(CHUNK)
        if not chunk:
            self.eof = True
            if self.content_length is not None and self.total < self.content_length:
                raise MultipartError(
                    f"The body ended after {self.total} of {self.content_length} bytes."
                )
            return b""
        self.total += len(chunk)
        if self.total > self.max_body:
            raise BodyTooLarge(f"The body is larger than {self.max_body} bytes.")
        if self.content_length is not None and self.total > self.content_length:
            raise MultipartError(
                f"The body is longer than its Content-Length of {self.content_length}."
            )
        return chunk


@dataclass(eq=False, kw_only=True)
class ScannedUpload:
    """A multipart body whose `model` field has been read; the rest still waits in the source."""

    model: str
    """The `model` field's value, decoded as UTF-8 and stripped."""
    value_start: int
    """Offset in the body of the model value's first byte (the end of the spooled prefix)."""
    raw_value: bytes
    """The value exactly as sent; `body(replace_model=...)` swaps these bytes only."""
    _spool: SpooledTemporaryFile[bytes] = field(repr=False)
    _tail: bytes = field(repr=False)
    _reader: _Reader = field(repr=False)
    _close_delimiter: bytes = field(repr=False)
    _used: bool = field(default=False, repr=False)

    @property
    def spooled_to_disk(self) -> bool:
        """Whether the prefix outgrew `spool_memory` and went to a temporary file."""
        return not isinstance(self._spool._file, io.BytesIO)

    def size(self, replace_model: str | None = None) -> int | None:
        """The length `body(replace_model)` will have, when the client sent Content-Length."""
        length = self._reader.content_length
        if length is None or replace_model is None:
            return length
        return length - len(self.raw_value) + len(replace_model.encode())

    def size_if_unchanged(self) -> int | None:
        """The body's total length if the client sent Content-Length, for the upstream's."""
        return self.size()

    async def body(self, replace_model: str | None = None) -> AsyncGenerator[bytes, None]:
        """The whole body: spooled prefix, model value (replaced if asked), then the rest.

        The rest is streamed from the source as it arrives, still counted against `max_body`
        and checked for a closing delimiter, so a body cut short raises `MultipartError`
        instead of ending quietly. Usable once; the spool is released when it ends.
        """
        if self._used:
            raise RuntimeError("ScannedUpload.body() can be iterated only once")
        self._used = True
        try:
            spool = self._spool
            spool.seek(0)
            while chunk := spool.read(CHUNK):
                yield chunk
            spool.close()
            value = self.raw_value if replace_model is None else replace_model.encode()
            if value:
                yield value
            watch = _DelimiterWatch(self._close_delimiter)
            chunk = self._tail
            while chunk:
                watch.feed(chunk)
                yield chunk
                chunk = await self._reader.read()
            if not watch.seen:
                raise MultipartError("The body ended before the closing multipart boundary.")
        finally:
            self.close()

    def close(self) -> None:
        """Release the spool (and its temporary file). Safe to call more than once."""
        self._spool.close()

    def __enter__(self) -> ScannedUpload:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _DelimiterWatch:
    """Looks for one byte string across chunk edges without copying the chunks."""

    __slots__ = ("_carry", "_needle", "seen")

    def __init__(self, needle: bytes) -> None:
        self._needle = needle
        self._carry = b""
        self.seen = False

    def feed(self, chunk: bytes) -> None:
        if self.seen:
            return
        keep = len(self._needle) - 1
        if self._needle in chunk or self._needle in self._carry + chunk[:keep]:
            self.seen = True
        self._carry = (self._carry + chunk[-keep:])[-keep:]


def boundary_of(content_type: str) -> bytes:
    """The `boundary=` of a `multipart/*` Content-Type, or `MultipartError`."""
    message = Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "multipart":
        raise MultipartError(f"Expected a multipart Content-Type, got {content_type!r}.")
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise MultipartError("The multipart Content-Type has no boundary.")
    # RFC 2046 allows 1-70 characters; a longer one is tolerated, a line break never.
    if len(boundary) > 200 or "\r" in boundary or "\n" in boundary:
        raise MultipartError("The multipart boundary is invalid.")
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        raise MultipartError("The multipart boundary is not ASCII.") from None


def _disposition(headers: bytes) -> tuple[str | None, bool]:
    """The part's form field name and whether it has a filename, from its header block."""
    value: bytes | None = None
    for line in re.split(rb"\r\n(?![ \t])", headers):
        name, sep, rest = line.partition(b":")
        if sep and name.strip().lower() == b"content-disposition":
            value = re.sub(rb"\r\n[ \t]", b" ", rest)
            break
    if value is None:
        return None, False
    params: dict[bytes, bytes] = {}
    for match in _PARAM.finditer(value):
        key, raw = match.group(1).lower(), match.group(2).strip()
        if raw[:1] == b'"' and raw[-1:] == b'"' and len(raw) >= 2:
            raw = _QUOTED_PAIR.sub(rb"\1", raw[1:-1])
        params.setdefault(key, raw)
    has_file = b"filename" in params or b"filename*" in params
    if b"name*" in params:  # RFC 5987 form: charset'language'percent-encoded
        charset, _, encoded = params[b"name*"].decode("latin-1").partition("'")
        encoded = encoded.partition("'")[2]
        try:
            return unquote(encoded, charset or "utf-8", "strict"), has_file
        except (LookupError, UnicodeDecodeError):
            pass
    if b"name" in params:
        return params[b"name"].decode("utf-8", "replace"), has_file
    return None, has_file


class _Scanner:
    """The parse state over the unconsumed bytes; everything before them is in the spool."""

    def __init__(
        self, boundary: bytes, spool: SpooledTemporaryFile[bytes], max_part_header: int
    ) -> None:
        self.first = b"--" + boundary  # the opening delimiter may start the body
        self.delimiter = b"\r\n--" + boundary
        self.spool = spool
        self.max_part_header = max_part_header
        self.buf = bytearray()
        self.pos = 0  # parse point in buf
        self.spooled = 0  # body offset of buf[0]
        self.state = self._preamble
        self.in_value = False  # then buf[0] is the model value's first byte
        self.value_cap = 0
        self.value_end: int | None = None

    def flush(self, upto: int) -> None:
        """Move buf[:upto] to the spool."""
        if upto > 0:
            self.spool.write(self.buf[:upto])
            del self.buf[:upto]
            self.pos = max(0, self.pos - upto)
            self.spooled += upto

    def settle(self) -> None:
        """Spool what has been parsed, before waiting for more bytes."""
        if not self.in_value:
            self.flush(self.pos)

    def step(self) -> bool:
        """Parse as far as the buffer allows; False when more bytes are needed."""
        return self.state()

    def _delimiter_line(self, at: int) -> int | None:
        """After a delimiter's boundary at `at`: the next part's start, or None if more needed.

        Raises ModelNotFound at the closing delimiter and MultipartError for anything but
        transport padding and CRLF (the boundary must not occur inside a part).
        """
        buf = self.buf
        if len(buf) - at < 2:
            return None
        if buf[at : at + 2] == b"--":
            raise ModelNotFound("The multipart body has no 'model' field.")
        end = at
        while end < len(buf) and buf[end] in _LWSP:
            end += 1
        if len(buf) - end < 2:
            if end - at > self.max_part_header:
                raise MultipartError("The multipart delimiter line is too long.")
            return None
        if buf[end : end + 2] != _CRLF:
            raise MultipartError("A multipart delimiter is followed by unexpected bytes.")
        return end + 2

    def _preamble(self) -> bool:
        buf = self.buf
        if self.spooled == 0 and self.pos == 0:
            if len(buf) < len(self.first):
                return False
            if buf.startswith(self.first):
                self.pos = len(self.first)
                self.state = self._opening
                return True
        index = buf.find(self.delimiter, self.pos)
        if index < 0:
            self.flush(max(self.pos, len(buf) - len(self.delimiter) + 1))
            return False
        self.pos = index + len(self.delimiter)
        self.state = self._opening
        return True

    def _opening(self) -> bool:
        # In the preamble a lookalike line is just text (RFC 2046 §5.1.1), so keep searching.
        try:
            start = self._delimiter_line(self.pos)
        except ModelNotFound:
            raise
        except MultipartError:
            self.state = self._preamble
            return True
        if start is None:
            return False
        self.pos = start
        self.state = self._headers
        return True

    def _headers(self) -> bool:
        buf, pos = self.buf, self.pos
        if len(buf) - pos < 2:
            return False
        if buf[pos : pos + 2] == _CRLF:
            end, content = pos, pos + 2
        else:
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0:
                if len(buf) - pos > self.max_part_header:
                    raise MultipartError("A multipart part's headers are too long.")
                return False
            content = end + 4
        if end - pos > self.max_part_header:
            raise MultipartError("A multipart part's headers are too long.")
        name, is_file = _disposition(bytes(buf[pos:end]))
        if name == "model":
            self.flush(content)
            self.in_value = True
            self.value_cap = MAX_FILE_MODEL if is_file else self.max_part_header
            self.state = self._value
        else:
            self.pos = content
            self.state = self._content
        return True

    def _content(self) -> bool:
        index = self.buf.find(self.delimiter, self.pos)
        if index < 0:
            self.flush(max(self.pos, len(self.buf) - len(self.delimiter) + 1))
            return False
        self.pos = index + len(self.delimiter)
        self.state = self._after_content
        return True

    def _after_content(self) -> bool:
        start = self._delimiter_line(self.pos)
        if start is None:
            return False
        self.pos = start
        self.state = self._headers
        return True

    def _value(self) -> bool:
        # The value starts at buf[0]: everything before it went to the spool.
        index = self.buf.find(self.delimiter, self.pos)
        if index < 0:
            self.pos = max(0, len(self.buf) - len(self.delimiter) + 1)
            if self.pos > self.value_cap:
                raise MultipartError("The 'model' field is too long.")
            return False
        if index > self.value_cap:
            raise MultipartError("The 'model' field is too long.")
        try:
            start = self._delimiter_line(index + len(self.delimiter))
        except ModelNotFound:
            start = index  # the closing delimiter: the model part is the last one
        if start is None:
            self.pos = index
            return False
        self.value_end = index
        return False


async def scan_for_model(
    source: ByteSource,
    content_type: str,
    *,
    content_length: int | None,
    max_body: int,
    spool_memory: int = 1 << 20,
    max_part_header: int = 16 * 1024,
    spool_dir: str | None = None,
) -> ScannedUpload:
    """Read `source` up to the end of the `model` field's value; the rest stays unread.

    What precedes the value is spooled (in memory up to `spool_memory`, then in a temporary
    file in `spool_dir`); the caller streams the whole body on with `ScannedUpload.body()`
    and must `close()` it if it does not. Raises `MultipartError` for a malformed body,
    `ModelNotFound` if it has no `model` field, `BodyTooLarge` past `max_body` bytes.
    """
    boundary = boundary_of(content_type)
    if content_length is not None and content_length > max_body:
        raise BodyTooLarge(f"The body is larger than {max_body} bytes.")
    reader = _Reader(source=source, content_length=content_length, max_body=max_body)
    # Owned by the ScannedUpload from here on, which closes it; closed below on failure.
    spool: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(  # noqa: SIM115
        max_size=spool_memory, dir=spool_dir
    )
    try:
        scanner = _Scanner(boundary, spool, max_part_header)
        while True:
            while scanner.step():
                pass
            if scanner.value_end is not None:
                break
            scanner.settle()
            chunk = await reader.read()
            if not chunk:
                raise MultipartError("The multipart body ended before its 'model' field did.")
            scanner.buf += chunk
        end = scanner.value_end
        raw = bytes(scanner.buf[:end])
        try:
            model = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise MultipartError("The 'model' field is not valid UTF-8.") from None
        if not model:
            raise ModelNotFound("The 'model' field is empty.")
        return ScannedUpload(
            model=model,
            value_start=scanner.spooled,
            raw_value=raw,
            _spool=spool,
            _tail=bytes(scanner.buf[end:]),
            _reader=reader,
            _close_delimiter=scanner.delimiter + b"--",
        )
    except BaseException:
        spool.close()
        raise
