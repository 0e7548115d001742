"""The multipart scanner: finding `model` anywhere, bytes unchanged, memory bounded."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tracemalloc
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.pytest_plugin import AiohttpClient

from azproxy.multipart import (
    MAX_FILE_MODEL,
    BodyTooLarge,
    ModelNotFound,
    MultipartError,
    ScannedUpload,
    scan_for_model,
)

BOUNDARY = "------------------------d74496d66958873e"
CURL_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
MB = 1 << 20


class FlowProtocol(BaseProtocol):
    """The transport side of a StreamReader: records aiohttp's pause/resume (backpressure)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.transport = asyncio.Transport()  # "connected": StreamReader waits only then
        self.resumed = asyncio.Event()
        self.resumed.set()

    def pause_reading(self) -> None:
        self.resumed.clear()

    def resume_reading(self, resume_parser: bool = True) -> None:
        self.resumed.set()


class DripReader(aiohttp.StreamReader):
    """A real StreamReader that receives the next piece just before each read: one per read."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        loop = asyncio.get_running_loop()
        super().__init__(FlowProtocol(loop), 2**16, loop=loop)
        self.pieces = deque(p for p in pieces if p)
        self.reads = 0

    async def read(self, n: int = -1) -> bytes:
        self.reads += 1
        if self.pieces:
            self.feed_data(self.pieces.popleft())
        elif not self.is_eof():
            self.feed_eof()
        return await super().read(n)


def part(
    name: str, value: bytes, *, filename: str | None = None, ctype: str | None = None
) -> bytes:
    """One part as curl writes it, opening delimiter included."""
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if ctype is not None:
        head += f"Content-Type: {ctype}\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


def curl_body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


AUDIO = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n\r\n" + b"\r\n" * 3


def audio_part() -> bytes:
    return part("file", AUDIO, filename="speech.wav", ctype="audio/wav")


async def writer_body(fields: list[tuple[str, bytes | str, str | None]]) -> tuple[bytes, str]:
    """A body as aiohttp's own MultipartWriter encodes it: (bytes, Content-Type)."""
    with aiohttp.MultipartWriter("form-data") as writer:
        for name, value, filename in fields:
            payload = writer.append(value)
            if filename is None:
                payload.set_content_disposition("form-data", name=name)
            else:
                payload.set_content_disposition("form-data", name=name, filename=filename)
        return await writer.as_bytes(), writer.content_type


async def scan(
    body: bytes | Iterable[bytes],
    content_type: str = CURL_TYPE,
    *,
    content_length: int | None = None,
    max_body: int = 100 * MB,
    spool_memory: int = MB,
    max_part_header: int = 16 * 1024,
    spool_dir: str | None = None,
) -> ScannedUpload:
    pieces = [body] if isinstance(body, bytes) else list(body)
    return await scan_for_model(
        DripReader(pieces),
        content_type,
        content_length=content_length,
        max_body=max_body,
        spool_memory=spool_memory,
        max_part_header=max_part_header,
        spool_dir=spool_dir,
    )


async def drain(upload: ScannedUpload, replace_model: str | None = None) -> bytes:
    return b"".join([chunk async for chunk in upload.body(replace_model)])


async def roundtrip(
    body: bytes | Iterable[bytes], content_type: str = CURL_TYPE
) -> tuple[str, bytes]:
    upload = await scan(body, content_type)
    with upload:
        return upload.model, await drain(upload)


# --- where the model is --------------------------------------------------------------------


async def test_model_first_as_openai_python_sends_it() -> None:
    body, ctype = await writer_body(
        [("model", "whisper-1", None), ("language", "en", None), ("file", AUDIO, "a.wav")]
    )
    upload = await scan(body, ctype, content_length=len(body))
    with upload:
        assert upload.model == "whisper-1"
        assert upload.value_start < 200  # only the model part's head was spooled
        assert upload.size_if_unchanged() == len(body)
        assert await drain(upload) == body


async def test_model_after_the_file_as_openai_node_sends_it() -> None:
    body, ctype = await writer_body(
        [("file", AUDIO, "a.wav"), ("model", "whisper-1", None), ("response_format", "json", None)]
    )
    upload = await scan(body, ctype)
    with upload:
        assert upload.model == "whisper-1"
        assert upload.value_start > len(AUDIO)
        assert upload.size_if_unchanged() is None  # no Content-Length given
        assert await drain(upload) == body


async def test_model_as_the_last_part() -> None:
    body = curl_body(audio_part(), part("model", b"whisper-1"))
    assert await roundtrip(body) == ("whisper-1", body)


async def test_model_between_several_images() -> None:
    body = curl_body(
        part("image[]", b"\x89PNG first" * 100, filename="a.png", ctype="image/png"),
        part("prompt", b"add a hat"),
        part("model", b"gpt-image-1"),
        part("image[]", b"\x89PNG second" * 100, filename="b.png", ctype="image/png"),
        part("mask", b"\x89PNG mask", filename="m.png", ctype="image/png"),
    )
    assert await roundtrip(body) == ("gpt-image-1", body)


async def test_the_first_model_field_wins() -> None:
    body = curl_body(part("model", b"first"), part("model", b"second"))
    assert await roundtrip(body) == ("first", body)


async def test_value_is_stripped_and_utf8() -> None:
    body = curl_body(part("model", " d\xc3\xa9ploiement \r\n".encode("latin-1")))
    assert (await roundtrip(body))[0] == "déploiement"


@pytest.mark.parametrize(
    "disposition",
    [
        'form-data; name="model"',
        "form-data; name=model",
        "form-data;name=model",
        'form-data; NAME = "model"',
        "form-data; name*=utf-8''model",
        'form-data; filename="notes.txt"; name="model"',
    ],
)
@pytest.mark.parametrize(
    "header", ["Content-Disposition", "content-disposition", "CONTENT-DISPOSITION"]
)
async def test_disposition_spellings(header: str, disposition: str) -> None:
    model = f"--{BOUNDARY}\r\n{header}: {disposition}\r\n\r\ngpt-4o-transcribe\r\n".encode()
    body = curl_body(audio_part(), model)
    assert await roundtrip(body) == ("gpt-4o-transcribe", body)


async def test_folded_header_and_other_headers() -> None:
    model = (
        f"--{BOUNDARY}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        'Content-Disposition: form-data;\r\n\tname="model"\r\nX-Extra: 1\r\n\r\nwhisper-1\r\n'
    ).encode()
    body = curl_body(model, audio_part())
    assert await roundtrip(body) == ("whisper-1", body)


async def test_lookalikes_are_not_the_model() -> None:
    # A part in the file's content, under a boundary one character short of the real one.
    fake = part("model", b"fake").replace(BOUNDARY.encode(), BOUNDARY[:-1].encode())
    body = curl_body(
        part("models", b"no"),
        part("model_name", b"no"),
        part("file", b'name="model"\r\n\r\n' + fake, filename="model", ctype="text/plain"),
        part("x", b'Content-Disposition: form-data; name="model"'),
        part("model", b"yes"),
    )
    assert await roundtrip(body) == ("yes", body)


async def test_preamble_epilogue_and_transport_padding() -> None:
    body = (
        f"This is a preamble\r\n--{BOUNDARY}-lookalike\r\n--{BOUNDARY} \t\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; filename="a"\r\n\r\ndata'
        + f"\r\n--{BOUNDARY}  \r\n".encode()
        + b'Content-Disposition: form-data; name="model"\r\n\r\nwhisper-1'
        + f"\r\n--{BOUNDARY}--\r\nepilogue\r\n".encode()
    )
    assert await roundtrip(body) == ("whisper-1", body)


async def test_part_without_headers() -> None:
    body = curl_body(f"--{BOUNDARY}\r\n\r\nanonymous\r\n".encode(), part("model", b"m"))
    assert await roundtrip(body) == ("m", body)


async def test_quoted_boundary_in_content_type() -> None:
    boundary = "a:b=c"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="model"\r\n\r\n'
        f"m\r\n--{boundary}--\r\n"
    ).encode()
    assert await roundtrip(body, f'multipart/form-data; boundary="{boundary}"') == ("m", body)


async def test_model_sent_as_a_file_is_read_as_text() -> None:
    body = curl_body(part("model", b"whisper-1\n", filename="model.txt", ctype="text/plain"))
    assert await roundtrip(body) == ("whisper-1", body)


# --- replacing the value -------------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 1, 3])
async def test_replacement_changes_only_the_value(position: int) -> None:
    others = [
        part("file", AUDIO, filename="a.wav", ctype="audio/wav"),
        part("language", b"en"),
        part("timestamp_granularities[]", b"word"),
    ]

    def build(model: bytes) -> bytes:
        parts = list(others)
        parts.insert(position, part("model", model))
        return curl_body(*parts)

    original, expected = build(b"whisper"), build(b"my-whisper-deployment")
    upload = await scan(original, content_length=len(original))
    with upload:
        assert upload.raw_value == b"whisper"
        assert original[upload.value_start :].startswith(b"whisper\r\n--")
        assert upload.size("my-whisper-deployment") == len(expected)
        assert upload.size_if_unchanged() == len(original)
        assert await drain(upload, "my-whisper-deployment") == expected


async def test_replacement_swaps_the_raw_value_whitespace_included() -> None:
    original = curl_body(part("model", b" alias "), audio_part())
    expected = curl_body(part("model", b"deployment"), audio_part())
    upload = await scan(original)
    with upload:
        assert upload.model == "alias"
        assert await drain(upload, "deployment") == expected


# --- reads split anywhere ------------------------------------------------------------------


def small_bodies() -> Iterator[tuple[str, bytes]]:
    file = part("file", b"RIFF\r\n--" + b"\r\n" * 3 + b"WAVE", filename="a.wav", ctype="audio/wav")
    model = part("model", b"whisper-1")
    yield "model-first", curl_body(model, file)
    yield "model-last", curl_body(file, model)
    yield "model-middle", curl_body(file, model, part("language", b"en"))


@pytest.mark.parametrize(("order", "body"), list(small_bodies()))
async def test_split_into_two_reads_at_every_position(order: str, body: bytes) -> None:
    for cut in range(1, len(body)):
        reader = DripReader([body[:cut], body[cut:]])
        upload = await scan_for_model(reader, CURL_TYPE, content_length=len(body), max_body=MB)
        with upload:
            assert upload.model == "whisper-1", (order, cut)
            assert await drain(upload) == body, (order, cut)


@pytest.mark.parametrize(("order", "body"), list(small_bodies()))
@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 47, 48, 49])
async def test_split_into_small_reads(order: str, body: bytes, size: int) -> None:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    reader = DripReader(pieces)
    upload = await scan_for_model(reader, CURL_TYPE, content_length=None, max_body=MB)
    with upload:
        replaced = body.replace(b"\r\n\r\nwhisper-1\r\n", b"\r\n\r\ndep\r\n")
        assert await drain(upload, "dep") == replaced
    assert reader.reads >= len(pieces)


async def test_reads_at_most_64k_at_once() -> None:
    big = os.urandom(300 * 1024)
    body = curl_body(part("file", big, filename="a"), part("model", b"m"))
    upload = await scan([body])
    with upload:
        chunks = [chunk async for chunk in upload.body()]
    assert b"".join(chunks) == body
    assert max(len(c) for c in chunks) <= 64 * 1024 + len(BOUNDARY) + 8


# --- malformed, missing, too large ---------------------------------------------------------


async def test_missing_model() -> None:
    with pytest.raises(ModelNotFound):
        await scan(curl_body(audio_part(), part("language", b"en")))


async def test_empty_multipart_has_no_model() -> None:
    with pytest.raises(ModelNotFound):
        await scan(f"--{BOUNDARY}--\r\n".encode())


async def test_empty_model_value() -> None:
    with pytest.raises(ModelNotFound, match="empty"):
        await scan(curl_body(part("model", b" \t"), audio_part()))


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
async def test_truncated_before_the_model_ends(keep: float) -> None:
    body = curl_body(audio_part(), part("model", b"whisper-1"))
    cut = body[: int(len(body) * keep)]
    with pytest.raises(MultipartError) as info:
        await scan(cut)
    assert not isinstance(info.value, ModelNotFound)


@pytest.mark.parametrize("keep", [50, 100, 300])
async def test_truncated_after_the_model(keep: int) -> None:
    body = curl_body(part("model", b"whisper-1"), audio_part())
    head = body.index(b"whisper-1") + 9
    upload = await scan(body[: head + keep])
    with upload:
        assert upload.model == "whisper-1"
        with pytest.raises(MultipartError, match="closing"):
            await drain(upload)


async def test_shorter_than_content_length() -> None:
    body = curl_body(part("model", b"whisper-1"), audio_part())
    upload = await scan(body, content_length=len(body) + 10)
    with upload, pytest.raises(MultipartError, match="ended after"):
        await drain(upload)
    with pytest.raises(MultipartError, match="ended after"):
        await scan(body[:50], content_length=len(body))


async def test_longer_than_content_length() -> None:
    body = curl_body(part("model", b"whisper-1"), audio_part())
    upload = await scan([body[:150], body[150:]], content_length=len(body) - 1)
    with upload, pytest.raises(MultipartError, match="longer"):
        await drain(upload)
    with pytest.raises(MultipartError, match="longer"):
        await scan(body, content_length=len(body) - 1)


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "application/json",
        "multipart/form-data; boundary=é",
    ],
)
async def test_unusable_content_type(content_type: str) -> None:
    with pytest.raises(MultipartError):
        await scan(curl_body(part("model", b"m")), content_type)


async def test_wrong_boundary_in_body() -> None:
    body = curl_body(part("model", b"m")).replace(BOUNDARY.encode(), b"other")
    with pytest.raises(MultipartError) as info:
        await scan(body)
    assert not isinstance(info.value, ModelNotFound)


@pytest.mark.parametrize("model_position", ["before", "after"])
async def test_boundary_inside_a_part_is_rejected(model_position: str) -> None:
    bad = part("file", f"x\r\n--{BOUNDARY}junk\r\n".encode(), filename="a")
    parts = [bad, part("model", b"m")]
    if model_position == "before":
        parts.reverse()
        parts[0] = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\nm'.encode()
        parts[0] += f"\r\n--{BOUNDARY}junk\r\n".encode()
    with pytest.raises(MultipartError, match="unexpected"):
        await scan(curl_body(*parts))


async def test_part_headers_too_long() -> None:
    headers = b"X-Padding: " + b"a" * 20_000 + b"\r\n"
    body = f"--{BOUNDARY}\r\n".encode() + headers + b"\r\n" + curl_body(part("model", b"m"))
    with pytest.raises(MultipartError, match="headers are too long"):
        await scan(body)
    with pytest.raises(MultipartError, match="headers are too long"):
        await scan([body[:100], body[100:9000], body[9000:]], max_part_header=4096)


async def test_part_headers_never_ending() -> None:
    body = f"--{BOUNDARY}\r\n".encode() + b"X: y\r\n" * 10_000
    with pytest.raises(MultipartError, match="headers are too long"):
        await scan([body[i : i + 1000] for i in range(0, len(body), 1000)])


async def test_model_file_part_is_capped() -> None:
    ok = b"m" * MAX_FILE_MODEL
    body = curl_body(part("model", ok, filename="model.txt"))
    assert (await roundtrip(body))[0] == ok.decode()
    with pytest.raises(MultipartError, match="too long"):
        await scan(curl_body(part("model", ok + b"m", filename="model.txt")))
    with pytest.raises(MultipartError, match="too long"):
        await scan(curl_body(part("model", b"m" * MB, filename="model.txt"), audio_part()))


async def test_model_field_is_capped() -> None:
    with pytest.raises(MultipartError, match="too long"):
        await scan(curl_body(part("model", b"m" * 5000)), max_part_header=4096)


async def test_model_not_utf8() -> None:
    with pytest.raises(MultipartError, match="UTF-8"):
        await scan(curl_body(part("model", b"\xff\xfe")))


async def test_too_large_by_content_length() -> None:
    reader = DripReader([curl_body(part("model", b"m"))])
    with pytest.raises(BodyTooLarge):
        await scan_for_model(reader, CURL_TYPE, content_length=10 * MB, max_body=MB)
    assert reader.reads == 0


async def test_too_large_before_the_model() -> None:
    body = curl_body(part("file", b"x" * (2 * MB), filename="a"), part("model", b"m"))
    with pytest.raises(BodyTooLarge):
        await scan(chunks_of(body), max_body=MB)


async def test_too_large_after_the_model() -> None:
    body = curl_body(part("model", b"m"), part("file", b"x" * (2 * MB), filename="a"))
    upload = await scan(chunks_of(body), max_body=MB)
    with upload, pytest.raises(BodyTooLarge):
        await drain(upload)


def chunks_of(body: bytes, size: int = 64 * 1024) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


# --- the spool -----------------------------------------------------------------------------


def open_files_under(directory: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    found = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")


@needs_proc
async def test_close_removes_the_temporary_file(tmp_path: Path) -> None:
    body = curl_body(part("file", os.urandom(MB), filename="a"), part("model", b"m"))
    upload = await scan(chunks_of(body), spool_memory=64 * 1024, spool_dir=str(tmp_path))
    assert upload.spooled_to_disk
    assert len(open_files_under(tmp_path)) == 1
    upload.close()
    upload.close()
    assert open_files_under(tmp_path) == []


@needs_proc
async def test_body_releases_the_spool_when_done(tmp_path: Path) -> None:
    body = curl_body(part("file", os.urandom(MB), filename="a"), part("model", b"m"))
    upload = await scan_for_model(
        DripReader(chunks_of(body)),
        CURL_TYPE,
        content_length=None,
        max_body=10 * MB,
        spool_memory=64 * 1024,
        spool_dir=str(tmp_path),
    )
    stream = upload.body()
    assert len(await anext(stream)) > 0
    assert len(open_files_under(tmp_path)) == 1
    await stream.aclose()
    assert open_files_under(tmp_path) == []


@needs_proc
async def test_failed_scan_releases_the_spool(tmp_path: Path) -> None:
    body = curl_body(part("file", os.urandom(MB), filename="a"), part("other", b"m"))
    with pytest.raises(ModelNotFound):
        await scan_for_model(
            DripReader(chunks_of(body)),
            CURL_TYPE,
            content_length=None,
            max_body=10 * MB,
            spool_memory=64 * 1024,
            spool_dir=str(tmp_path),
        )
    assert open_files_under(tmp_path) == []


@needs_proc
async def test_cancelled_scan_releases_the_spool(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    reader = aiohttp.StreamReader(FlowProtocol(loop), 2**16, loop=loop)
    reader.feed_data(part("file", os.urandom(MB), filename="a"))
    task = asyncio.create_task(
        scan_for_model(
            reader,
            CURL_TYPE,
            content_length=None,
            max_body=10 * MB,
            spool_memory=64 * 1024,
            spool_dir=str(tmp_path),
        )
    )
    for _ in range(100):
        await asyncio.sleep(0)
        if open_files_under(tmp_path):
            break
    assert len(open_files_under(tmp_path)) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert open_files_under(tmp_path) == []


async def test_body_is_usable_once() -> None:
    upload = await scan(curl_body(part("model", b"m")))
    with upload:
        await drain(upload)
        with pytest.raises(RuntimeError, match="once"):
            await drain(upload)


# --- memory --------------------------------------------------------------------------------

UPLOAD = 25 * MB


def lazy_body(model_first: bool) -> Iterator[bytes]:
    """A 25 MB transcription upload, produced 64 KiB at a time."""
    model = part("model", b"whisper-1")
    if model_first:
        yield model
    yield (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    block = 64 * 1024
    for i in range(UPLOAD // block):
        yield (i % 251).to_bytes() * block
    yield b"\r\n"
    if not model_first:
        yield model
    yield f"--{BOUNDARY}--\r\n".encode()


async def feed(
    reader: aiohttp.StreamReader, protocol: FlowProtocol, chunks: Iterable[bytes]
) -> str:
    """Feed `reader` as aiohttp's server does, honouring its backpressure; the body's hash."""
    digest = hashlib.sha256()
    for chunk in chunks:
        await protocol.resumed.wait()
        digest.update(chunk)
        reader.feed_data(chunk)
        await asyncio.sleep(0)
    reader.feed_eof()
    return digest.hexdigest()


@pytest.mark.parametrize("model_first", [True, False], ids=["model-first", "model-last"])
async def test_25mb_upload_memory_stays_bounded(model_first: bool, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    protocol = FlowProtocol(loop)
    reader = aiohttp.StreamReader(protocol, 2**16, loop=loop)
    tracemalloc.start()
    try:
        producer = asyncio.create_task(feed(reader, protocol, lazy_body(model_first)))
        upload = await scan_for_model(
            reader,
            CURL_TYPE,
            content_length=None,
            max_body=30 * MB,
            spool_dir=str(tmp_path),
        )
        with upload:
            assert upload.model == "whisper-1"
            assert upload.spooled_to_disk is not model_first
            digest, size = hashlib.sha256(), 0
            async for chunk in upload.body("whisper-deployment"):
                size += len(chunk)
                digest.update(chunk.replace(b"whisper-deployment", b"whisper-1"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == await producer
    assert size > UPLOAD
    print(f"\n25 MB upload, model {'first' if model_first else 'last'}: peak {peak / MB:.2f} MiB")
    assert peak < 4 * MB


# --- through a real server -----------------------------------------------------------------


async def test_request_content_of_a_real_server(aiohttp_client: AiohttpClient) -> None:
    async def handler(request: web.Request) -> web.Response:
        upload = await scan_for_model(
            request.content,
            request.headers["Content-Type"],
            content_length=request.content_length,
            max_body=10 * MB,
        )
        with upload:
            digest = hashlib.sha256()
            async for chunk in upload.body():
                digest.update(chunk)
        return web.json_response(
            {"model": upload.model, "sha": digest.hexdigest(), "size": upload.size_if_unchanged()}
        )

    app = web.Application()
    app.router.add_post("/", handler)
    client = await aiohttp_client(app)
    body, ctype = await writer_body(
        [("file", os.urandom(MB), "a.wav"), ("model", "whisper-1", None)]
    )

    async def chunked() -> AsyncIterator[bytes]:
        for chunk in chunks_of(body, 10_000):
            yield chunk

    sized = io.BytesIO(body)
    for data, length in ((sized, len(body)), (chunked(), None)):
        async with client.post("/", data=data, headers={"Content-Type": ctype}) as response:
            assert response.status == 200
            assert await response.json() == {
                "model": "whisper-1",
                "sha": hashlib.sha256(body).hexdigest(),
                "size": length,
            }
