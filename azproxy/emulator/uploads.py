"""Streamed request bodies: recording them as they are read, and parsing multipart forms.

A multipart body is never read whole. The recording middleware puts a `TeeStream` between the
socket and the parser: every byte the parser consumes is also appended to the recorded request
(up to the state's `record_limit`); file parts are counted and hashed chunk by chunk.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from typing import cast

from aiohttp import BodyPartReader, MultipartReader, StreamReader, web

from .state import EMULATOR_STATE, RecordedRequest, UploadedFile, UploadSummary

CHUNK_SIZE = 1 << 16
FIELD_LIMIT = 1 << 20  # a text field longer than this is not a form field but an abuse
HEAD_SIZE = 64  # the first bytes of each file are kept, to sniff formats (WAV headers)


class FormError(ValueError):
    """The body is not a well-formed multipart form."""


class TeeStream:
    """The parts of `StreamReader` that `MultipartReader` uses, recording what passes through.

    `unread_data` hands back the tail of what was just read, so the record is cut back by as
    much and the bytes are recorded again when they are read again.
    """

    def __init__(self, source: StreamReader, record: RecordedRequest, limit: int | None) -> None:
        self._source = source
        self._record = record
        self._limit = limit
        self._buffer = bytearray()
        self.received = 0

    def _note(self, data: bytes) -> bytes:
        self.received += len(data)
        room = len(data) if self._limit is None else self._limit - len(self._buffer)
        if room > 0:
            self._buffer += data[:room]
        return data

    def at_eof(self) -> bool:
        return self._source.at_eof()

    async def read(self, n: int = -1) -> bytes:
        return self._note(await self._source.read(n))

    async def readany(self) -> bytes:
        return self._note(await self._source.readany())

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        return self._note(await self._source.readline(max_line_length=max_line_length))

    def unread_data(self, data: bytes) -> None:
        self.received -= len(data)
        del self._buffer[self.received :]
        with warnings.catch_warnings():
            # Deprecated in aiohttp, yet what its own multipart reader calls.
            warnings.simplefilter("ignore", DeprecationWarning)
            self._source.unread_data(data)

    async def drain(self) -> None:
        """Read (and record) whatever the handler left unread."""
        while await self.readany():
            pass

    def finish(self) -> None:
        """Store what was recorded on the request record."""
        self._record.body = bytes(self._buffer)
        self._record.body_size = self.received


RECORD = web.RequestKey("emulator_record", RecordedRequest)
TEE = web.RequestKey("emulator_tee", TeeStream)


def is_multipart(request: web.Request) -> bool:
    return request.content_type.startswith("multipart/")


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None past `limit` bytes; goes through the tee when there is one."""
    tee: TeeStream | None = request.get(TEE)
    if tee is None:
        return await request.read()
    data = bytearray()
    while chunk := await tee.readany():
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


# Given a file part's name and filename, where its chunks should go (None: nowhere).
FileSink = Callable[[str, str], Callable[[bytes], object] | None]


async def _field(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(CHUNK_SIZE):
        data += chunk
        if len(data) > FIELD_LIMIT:
            raise FormError(f"form field {part.name!r} is too long")
    try:
        return data.decode(part.get_charset("utf-8"))
    except (UnicodeDecodeError, LookupError) as exc:
        raise FormError(f"form field {part.name!r} is not text") from exc


async def _file(
    part: BodyPartReader, write: Callable[[bytes], object] | None
) -> tuple[UploadedFile, bytes]:
    digest, size, head = hashlib.sha256(), 0, bytearray()
    while chunk := await part.read_chunk(CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
        if len(head) < HEAD_SIZE:
            head += chunk[: HEAD_SIZE - len(head)]
        if write is not None:
            write(chunk)
    return UploadedFile(part.filename or "", size, digest.hexdigest()), bytes(head)


async def read_form(
    request: web.Request, sink: FileSink | None = None
) -> tuple[UploadSummary, dict[str, bytes]]:
    """Parse a multipart form part by part; FormError if it is not one.

    File parts are streamed: each chunk is hashed, counted and handed to what `sink` returns
    for the part, and nothing else keeps it. Returns the summary and the first `HEAD_SIZE`
    bytes of each file part, by name (the first file of a repeated name). The summary is
    recorded on the request and as the state's `last_upload`.
    """
    tee: TeeStream | None = request.get(TEE)
    if tee is None or not is_multipart(request):
        raise FormError("Invalid content type. Expected multipart/form-data.")
    summary, heads = UploadSummary(), dict[str, bytes]()
    try:
        # request.multipart() would read the socket directly, past the recording tee.
        reader = MultipartReader(request.headers, cast(StreamReader, tee))
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                raise FormError("nested multipart parts are not supported")
            name = part.name or ""
            if part.filename is None:
                summary.fields[name] = value = await _field(part)
                summary.parts.append((name, value))
                continue
            write = sink(name, part.filename) if sink is not None else None
            uploaded, head = await _file(part, write)
            summary.files[name] = uploaded
            summary.parts.append((name, uploaded))
            heads.setdefault(name, head)
    except (ValueError, AssertionError) as exc:  # aiohttp's parser raises these on bad input
        raise FormError(str(exc) or "malformed multipart body") from exc
    request[RECORD].upload = summary
    request.app[EMULATOR_STATE].last_upload = summary
    return summary, heads
