"""The emulator's wider Azure surface over real sockets: images, audio, the v1 surface, the
Responses API, files and friends, realtime WebSockets and ARM, with the real openai SDK too.

As in test_emulator_functional.py, expected bodies are written out literally so a drift from
Azure's wire format shows up here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import re
import struct
import time
import tracemalloc
import wave
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from openai import AsyncAzureOpenAI, AsyncOpenAI, NotFoundError
from pytest_aiohttp import AiohttpClient

from azproxy.emulator import EmulatorState, Fault, UploadedFile, create_emulator_app

Client = TestClient[web.Request, web.Application]
JSON = dict[str, Any]

KEY = "test-key"
AUTH = {"api-key": KEY}
BEARER = {"Authorization": f"Bearer {KEY}"}
REPLY = "Hi there, friend."
GA = "2024-10-21"
PREVIEW = "2025-04-01-preview"
DEPLOYMENTS = ["gpt-4o", "dall-e-3", "gpt-image-1", "whisper", "tts", "gpt-realtime"]
BOUNDARY = "emulator-test-boundary"

NOT_FOUND = {"error": {"code": "404", "message": "Resource not found"}}
DEPLOYMENT_NOT_FOUND = {
    "error": {
        "code": "DeploymentNotFound",
        "message": "The API deployment for this resource does not exist. If you created the "
        "deployment within the last 5 minutes, please wait a moment and try again.",
    }
}
ACCESS_DENIED_CODE = "401"
SAFE = {"filtered": False, "severity": "safe"}
UNDETECTED = {"filtered": False, "detected": False}
IMAGE_FILTER = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
IMAGE_PROMPT_FILTER = {**IMAGE_FILTER, "jailbreak": UNDETECTED, "profanity": UNDETECTED}


@pytest.fixture
def state() -> EmulatorState:
    return EmulatorState(keys=[KEY], deployments=DEPLOYMENTS, reply=REPLY)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, state: EmulatorState) -> Client:
    return await aiohttp_client(create_emulator_app(state))


@pytest.fixture
def url(client: Client) -> str:
    return str(client.make_url("")).rstrip("/")


@pytest.fixture
async def azure_sdk(url: str) -> AsyncIterator[AsyncAzureOpenAI]:
    """The SDK as an Azure user builds it, pointed straight at the emulator."""
    async with AsyncAzureOpenAI(
        azure_endpoint=url, api_key=KEY, api_version=PREVIEW, max_retries=0
    ) as sdk:
        yield sdk


@pytest.fixture
async def v1_sdk(url: str) -> AsyncIterator[AsyncOpenAI]:
    """The stock OpenAI client on Azure's v1 surface, as Microsoft documents it."""
    async with AsyncOpenAI(base_url=f"{url}/openai/v1/", api_key=KEY, max_retries=0) as sdk:
        yield sdk


def make_wav(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * round(rate * seconds))
    return buffer.getvalue()


def multipart(*parts: tuple[str, str | tuple[str, bytes]]) -> bytes:
    """A multipart/form-data body with BOUNDARY: (name, text) or (name, (filename, bytes))."""
    out = b""
    for name, value in parts:
        out += f"--{BOUNDARY}\r\n".encode()
        if isinstance(value, str):
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()
        else:
            filename, data = value
            out += (
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode() + data
        out += b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


FORM = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_png(data: bytes) -> None:
    """A well-formed PNG: signature, IHDR, IDAT that inflates, IEND; every CRC right."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, kinds = 8, []
    while offset < len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        kind = data[offset + 4 : offset + 8]
        chunk = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack_from(">I", data, offset + 8 + length)
        assert crc == zlib.crc32(kind + chunk)
        if kind == b"IDAT":
            zlib.decompress(chunk)
        kinds.append(kind)
        offset += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]


def azure_path(deployment: str, operation: str, version: str = GA) -> str:
    return f"/openai/deployments/{deployment}/{operation}?api-version={version}"


# --- images --------------------------------------------------------------------------------


async def test_image_generation_returns_urls_by_default(client: Client) -> None:
    path = azure_path("dall-e-3", "images/generations")
    resp = await client.post(path, json={"prompt": "a cat", "size": "1024x1024"}, headers=AUTH)
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert "apim-request-id" in resp.headers
    body = await resp.json()
    assert abs(body["created"] - time.time()) < 60
    [image] = body["data"]
    assert re.fullmatch(r"https://emulator\.invalid/img/[0-9a-f]{32}\.png", image["url"])
    assert body == {
        "created": body["created"],
        "data": [
            {
                "url": image["url"],
                "revised_prompt": "Emulator rendering of: a cat",
                "content_filter_results": IMAGE_FILTER,
                "prompt_filter_results": IMAGE_PROMPT_FILTER,
            }
        ],
    }


async def test_image_generation_b64_json_is_a_png(client: Client) -> None:
    body = {"prompt": "a cat", "n": 2, "response_format": "b64_json"}
    resp = await client.post(azure_path("dall-e-3", "images/generations"), json=body, headers=AUTH)
    data = (await resp.json())["data"]
    assert len(data) == 2
    assert set(data[0]) == {
        "b64_json",
        "revised_prompt",
        "content_filter_results",
        "prompt_filter_results",
    }
    images = [base64.b64decode(d["b64_json"]) for d in data]
    for image in images:
        assert_png(image)
    assert images[0] != images[1]


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({}, "prompt", "'prompt' is a required property"),
        (
            {"prompt": "x", "response_format": "gif"},
            "response_format",
            "Invalid value: 'gif'. Supported values are: 'url', 'b64_json'.",
        ),
    ],
)
async def test_image_generation_validation(
    client: Client, state: EmulatorState, body: JSON, param: str, message: str
) -> None:
    state.add_fault(Fault("status", status=429))
    resp = await client.post(azure_path("dall-e-3", "images/generations"), json=body, headers=AUTH)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert (error["message"], error["param"], error["type"]) == (
        message,
        param,
        "invalid_request_error",
    )
    assert len(state.faults) == 1  # rejected before any fault is played


async def test_image_edit_needs_a_preview_api_version(client: Client, state: EmulatorState) -> None:
    state.add_fault(Fault("status", status=429))
    data = multipart(("image", ("a.png", b"png")), ("prompt", "hat"))
    resp = await client.post(azure_path("gpt-image-1", "images/edits"), data=data, headers=FORM)
    assert resp.status == 404
    assert await resp.json() == NOT_FOUND
    assert len(state.faults) == 1


async def test_image_edit(client: Client, state: EmulatorState) -> None:
    first, second = b"first image", b"second image bytes"
    data = multipart(
        ("image[]", ("a.png", first)),
        ("image[]", ("b.png", second)),
        ("prompt", "add a hat"),
        ("model", "gpt-image-1"),
    )
    headers = {**AUTH, **FORM}
    path = azure_path("gpt-image-1", "images/edits", PREVIEW)
    resp = await client.post(path, data=data, headers=headers)
    assert resp.status == 200
    body = await resp.json()
    [image] = body["data"]
    assert_png(base64.b64decode(image["b64_json"]))
    assert body == {
        "created": body["created"],
        "data": [
            {
                "b64_json": image["b64_json"],
                "content_filter_results": IMAGE_FILTER,
                "prompt_filter_results": IMAGE_PROMPT_FILTER,
            }
        ],
        "usage": {
            "input_tokens": 133,
            "input_tokens_details": {"image_tokens": 130, "text_tokens": 3},
            "output_tokens": 272,
            "total_tokens": 405,
        },
    }
    upload = state.last_upload
    assert upload is not None
    assert upload.fields == {"prompt": "add a hat", "model": "gpt-image-1"}
    assert upload.parts == [
        ("image[]", UploadedFile("a.png", len(first), sha(first))),
        ("image[]", UploadedFile("b.png", len(second), sha(second))),
        ("prompt", "add a hat"),
        ("model", "gpt-image-1"),
    ]
    assert state.last_request.upload is upload
    assert state.last_request.body == data


@pytest.mark.parametrize(
    ("parts", "param"),
    [
        ((("prompt", "hat"),), "image"),
        ((("image", ("a.png", b"x")),), "prompt"),
    ],
)
async def test_image_edit_validation(
    client: Client, parts: tuple[tuple[str, str | tuple[str, bytes]], ...], param: str
) -> None:
    path = azure_path("gpt-image-1", "images/edits", PREVIEW)
    resp = await client.post(path, data=multipart(*parts), headers={**AUTH, **FORM})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == param


# --- audio ---------------------------------------------------------------------------------


async def test_transcription_json_names_the_upload(client: Client, state: EmulatorState) -> None:
    audio = make_wav()
    data = multipart(("model", "whisper"), ("file", ("speech.wav", audio)))
    path = azure_path("whisper", "audio/transcriptions")
    resp = await client.post(path, data=data, headers={**AUTH, **FORM})
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await resp.json() == {"text": "Emulator transcription of speech.wav (32044 bytes)."}
    upload = state.last_upload
    assert upload is not None
    assert upload.fields == {"model": "whisper"}
    assert upload.files == {"file": UploadedFile("speech.wav", 32044, sha(audio))}
    recorded = state.last_request
    assert (recorded.body, recorded.body_size) == (data, len(data))


EXPECTED_TEXT = "Emulator transcription of speech.wav (80044 bytes)."


@pytest.mark.parametrize(
    ("fmt", "content_type", "expected"),
    [
        ("text", "text/plain; charset=utf-8", EXPECTED_TEXT + "\n"),
        (
            "srt",
            "text/plain; charset=utf-8",
            f"1\n00:00:00,000 --> 00:00:02,500\n{EXPECTED_TEXT}\n\n",
        ),
        (
            "vtt",
            "text/plain; charset=utf-8",
            f"WEBVTT\n\n00:00:00.000 --> 00:00:02.500\n{EXPECTED_TEXT}\n\n",
        ),
    ],
)
async def test_transcription_text_formats(
    client: Client, fmt: str, content_type: str, expected: str
) -> None:
    data = multipart(("file", ("speech.wav", make_wav(2.5))), ("response_format", fmt))
    path = azure_path("whisper", "audio/transcriptions")
    resp = await client.post(path, data=data, headers={**AUTH, **FORM})
    assert resp.headers["Content-Type"] == content_type
    assert await resp.text() == expected


async def test_transcription_verbose_json(client: Client) -> None:
    data = multipart(
        ("file", ("speech.wav", make_wav(2.5))),
        ("response_format", "verbose_json"),
        ("language", "fr"),
    )
    path = azure_path("whisper", "audio/transcriptions")
    resp = await client.post(path, data=data, headers={**AUTH, **FORM})
    assert await resp.json() == {
        "task": "transcribe",
        "language": "fr",
        "duration": 2.5,
        "text": EXPECTED_TEXT,
        "segments": [
            {
                "id": 0,
                "seek": 0,
                "start": 0.0,
                "end": 2.5,
                "text": EXPECTED_TEXT,
                "tokens": [50364, 50365, 50366, 50367, 50368, 50369],
                "temperature": 0.0,
                "avg_logprob": -0.25,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.01,
            }
        ],
    }


async def test_translation(client: Client) -> None:
    data = multipart(("file", ("talk.mp3", b"\xff\xfb" * 8000)))
    path = azure_path("whisper", "audio/translations")
    resp = await client.post(path, data=data, headers={**AUTH, **FORM})
    assert await resp.json() == {"text": "Emulator translation of talk.mp3 (16000 bytes)."}


@pytest.mark.parametrize(
    ("data", "headers", "message"),
    [
        (multipart(("model", "whisper")), FORM, "'file' is a required property"),
        (
            multipart(("file", ("a.wav", b"x")), ("response_format", "xml")),
            FORM,
            "Invalid value: 'xml'. Supported values are: "
            "'json', 'text', 'srt', 'verbose_json', 'vtt'.",
        ),
        (b'{"file": 1}', {}, "Invalid content type. Expected multipart/form-data."),
        (b"--nope\r\n", FORM, "Could not find starting boundary b'--emulator-test-boundary'"),
    ],
)
async def test_transcription_validation(
    client: Client, data: bytes, headers: dict[str, str], message: str
) -> None:
    path = azure_path("whisper", "audio/transcriptions")
    resp = await client.post(path, data=data, headers={**AUTH, **headers})
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == message


async def test_rejected_upload_is_still_recorded_whole(
    client: Client, state: EmulatorState
) -> None:
    data = multipart(("file", ("speech.wav", make_wav(0.5))))
    resp = await client.post(azure_path("whisper", "audio/transcriptions"), data=data, headers=FORM)
    assert resp.status == 401
    assert state.last_request.body == data
    assert state.last_upload is None


async def _stream_upload(size: int, chunk: bytes) -> AsyncIterator[bytes]:
    head = multipart(("model", "whisper")).removesuffix(f"--{BOUNDARY}--\r\n".encode())
    yield (
        head
        + (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="file"; filename="big.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
    )
    for _ in range(size // len(chunk)):
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


async def test_25_mb_upload_arrives_intact_without_being_held(
    client: Client, state: EmulatorState
) -> None:
    chunk = bytes(range(256)) * 256  # 64 KiB
    size = 25 * 1024 * 1024
    digest = hashlib.sha256()
    for _ in range(size // len(chunk)):
        digest.update(chunk)
    tracemalloc.start()
    try:
        path = azure_path("whisper", "audio/transcriptions")
        resp = await client.post(path, data=_stream_upload(size, chunk), headers={**AUTH, **FORM})
        assert await resp.json() == {"text": f"Emulator transcription of big.wav ({size} bytes)."}
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert state.last_upload is not None
    assert state.last_upload.files["file"] == UploadedFile("big.wav", size, digest.hexdigest())
    recorded = state.last_request
    assert len(recorded.body) == 1 << 20  # recorded up to record_limit, counted in full
    assert recorded.body_size > size
    assert peak < 8 * 1024 * 1024  # the 1 MiB record plus parser chunks, not 25 MB


async def test_record_limit_none_records_everything(aiohttp_client: AiohttpClient) -> None:
    state = EmulatorState(record_limit=None)
    client = await aiohttp_client(create_emulator_app(state))
    data = multipart(("file", ("a.bin", bytes(3 << 20))))
    path = azure_path("whisper", "audio/translations")
    resp = await client.post(path, data=io.BytesIO(data), headers={**AUTH, **FORM})
    assert resp.status == 200
    assert state.last_request.body == data


async def test_speech_mp3_streams_in_chunks(client: Client, state: EmulatorState) -> None:
    release = asyncio.Event()
    state.add_fault(Fault("hold", after_chunks=1, release=release))
    body = {"model": "tts", "input": "Hello there", "voice": "alloy"}
    resp = await client.post(azure_path("tts", "audio/speech"), json=body, headers=AUTH)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "audio/mpeg"
    assert resp.headers["Transfer-Encoding"] == "chunked"
    first = await resp.content.readexactly(16 * 1024)
    with pytest.raises(TimeoutError):  # the rest is held back: the client saw a partial body
        async with asyncio.timeout(0.3):
            await resp.content.readexactly(1)
    release.set()
    audio = first + await resp.read()
    assert len(audio) == 64 * 1024
    assert audio.startswith(b"ID3")
    again = await client.post(azure_path("tts", "audio/speech"), json=body, headers=AUTH)
    assert await again.read() == audio  # deterministic
    other = await client.post(
        azure_path("tts", "audio/speech"), json={**body, "input": "Bye"}, headers=AUTH
    )
    assert await other.read() != audio
    assert state.completed_streams == 3


async def test_speech_wav_is_a_valid_wav(client: Client) -> None:
    body = {"input": "one two three four", "voice": "nova", "response_format": "wav"}
    resp = await client.post(azure_path("tts", "audio/speech"), json=body, headers=AUTH)
    assert resp.headers["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(await resp.read())) as audio:
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 2, 24000)
        assert audio.getnframes() == 24000  # 0.25 s a word
        assert audio.readframes(audio.getnframes()) == bytes(48000)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"voice": "alloy"}, "input"),
        ({"input": "hi"}, "voice"),
        ({"input": "hi", "voice": "alloy", "response_format": "ogg"}, "response_format"),
    ],
)
async def test_speech_validation(client: Client, body: JSON, param: str) -> None:
    resp = await client.post(azure_path("tts", "audio/speech"), json=body, headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == param


async def test_reset_during_speech(client: Client, state: EmulatorState) -> None:
    state.add_fault(Fault("reset", after_chunks=2))
    body = {"input": "hi", "voice": "alloy"}
    resp = await client.post(azure_path("tts", "audio/speech"), json=body, headers=AUTH)
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()


@pytest.mark.parametrize(
    ("operation", "name"),
    [
        ("images/generations", "ImageGenerations_Create"),
        ("audio/speech", "Speech_Create"),
        ("audio/transcriptions", "Transcriptions_Create"),
    ],
)
async def test_media_429_names_the_operation(
    client: Client, state: EmulatorState, operation: str, name: str
) -> None:
    state.add_fault(Fault("status", status=429, retry_after=3))
    if operation == "audio/transcriptions":
        kwargs: JSON = {"data": multipart(("file", ("a.wav", b"x"))), "headers": {**AUTH, **FORM}}
    else:
        kwargs = {"json": {"prompt": "x", "input": "x", "voice": "x"}, "headers": AUTH}
    resp = await client.post(azure_path("whisper", operation), **kwargs)
    assert resp.status == 429
    assert resp.headers["retry-after"] == "3"
    message = (await resp.json())["error"]["message"]
    assert message.startswith(f"Requests to the {name} Operation under Azure OpenAI API version")


async def test_media_checks_deployment_and_key(client: Client) -> None:
    path = azure_path("nope", "images/generations")
    resp = await client.post(path, json={"prompt": "x"}, headers=AUTH)
    assert (resp.status, await resp.json()) == (404, DEPLOYMENT_NOT_FOUND)
    resp = await client.post(azure_path("dall-e-3", "images/generations"), json={"prompt": "x"})
    assert resp.status == 401
    resp = await client.post(
        "/openai/deployments/dall-e-3/images/generations", json={"prompt": "x"}, headers=AUTH
    )
    assert (resp.status, await resp.json()) == (404, NOT_FOUND)


# --- the v1 surface ------------------------------------------------------------------------

CHAT: JSON = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hi"}]}


@pytest.mark.parametrize("query", ["", "?api-version=v1", "?api-version=preview"])
async def test_v1_accepts_no_or_v1_api_version(client: Client, query: str) -> None:
    resp = await client.post(f"/openai/v1/chat/completions{query}", json=CHAT, headers=BEARER)
    assert resp.status == 200
    body = await resp.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == REPLY
    assert "prompt_filter_results" in body  # Azure-shaped, as on the classic route


async def test_v1_rejects_dated_api_versions(client: Client, state: EmulatorState) -> None:
    resp = await client.post(
        f"/openai/v1/chat/completions?api-version={GA}", json=CHAT, headers=BEARER
    )
    assert resp.status == 400
    assert await resp.json() == {
        "error": {"code": "BadRequest", "message": "API version not supported"}
    }


async def test_v1_model_is_the_deployment(client: Client) -> None:
    body = {**CHAT, "model": "gpt-5"}
    resp = await client.post("/openai/v1/chat/completions", json=body, headers=AUTH)
    assert (resp.status, await resp.json()) == (404, DEPLOYMENT_NOT_FOUND)
    resp = await client.post(
        "/openai/v1/chat/completions", json={"messages": CHAT["messages"]}, headers=AUTH
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "model"
    resp = await client.post("/openai/v1/chat/completions", json=CHAT)
    assert resp.status == 401


async def test_v1_chat_streams_azure_events(client: Client) -> None:
    body = {**CHAT, "stream": True}
    resp = await client.post("/apim/openai/v1/chat/completions", json=body, headers=AUTH)
    assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    frames = (await resp.read()).split(b"\n\n")
    assert frames[-2:] == [b"data: [DONE]", b""]
    events = [orjson.loads(f.removeprefix(b"data: ")) for f in frames[:-2]]
    assert events[0]["choices"] == []
    assert "prompt_filter_results" in events[0]
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[1:])
    assert text == REPLY


async def test_v1_embeddings(client: Client) -> None:
    body = {"model": "gpt-4o", "input": ["a", "b"]}
    resp = await client.post("/openai/v1/embeddings", json=body, headers=AUTH)
    reply = await resp.json()
    assert [d["index"] for d in reply["data"]] == [0, 1]


async def test_v1_multipart_model_after_the_file(client: Client, state: EmulatorState) -> None:
    audio = make_wav(0.5)
    data = multipart(("file", ("s.wav", audio)), ("model", "whisper"))
    resp = await client.post("/openai/v1/audio/transcriptions", data=data, headers={**AUTH, **FORM})
    assert await resp.json() == {"text": f"Emulator transcription of s.wav ({len(audio)} bytes)."}
    data = multipart(("file", ("s.wav", audio)), ("model", "whisper-9"))
    resp = await client.post("/openai/v1/audio/translations", data=data, headers={**AUTH, **FORM})
    assert (resp.status, await resp.json()) == (404, DEPLOYMENT_NOT_FOUND)
    data = multipart(("file", ("s.wav", audio)))
    resp = await client.post("/openai/v1/audio/translations", data=data, headers={**AUTH, **FORM})
    assert resp.status == 400


async def test_v1_images_and_speech(client: Client) -> None:
    body = {"model": "dall-e-3", "prompt": "a cat", "response_format": "b64_json"}
    resp = await client.post("/openai/v1/images/generations", json=body, headers=AUTH)
    assert_png(base64.b64decode((await resp.json())["data"][0]["b64_json"]))
    data = multipart(("model", "gpt-image-1"), ("image", ("a.png", b"x")), ("prompt", "hat"))
    resp = await client.post("/openai/v1/images/edits", data=data, headers={**AUTH, **FORM})
    assert resp.status == 200
    body = {"model": "tts", "input": "hi", "voice": "alloy", "response_format": "pcm"}
    resp = await client.post("/openai/v1/audio/speech", json=body, headers=AUTH)
    assert (resp.headers["Content-Type"], len(await resp.read())) == ("audio/pcm", 12000)


async def test_v1_models(client: Client) -> None:
    resp = await client.get("/openai/v1/models", headers=BEARER)
    body = await resp.json()
    assert body["object"] == "list"
    assert body["data"][0] == {
        "id": "gpt-4o",
        "object": "model",
        "created": 1715367049,
        "owned_by": "system",
    }
    assert {m["id"] for m in body["data"]} >= {"whisper", "dall-e-3", "text-embedding-3-small"}
    resp = await client.get("/openai/v1/models/whisper", headers=BEARER)
    assert (await resp.json())["id"] == "whisper"
    resp = await client.get("/openai/v1/models/nope", headers=BEARER)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "model_not_found"
    assert (await client.get("/openai/v1/models")).status == 401


async def test_classic_legacy_completions_are_not_on_v1(client: Client) -> None:
    body = {"model": "gpt-4o", "prompt": "x"}
    resp = await client.post("/openai/v1/completions", json=body, headers=AUTH)
    assert (resp.status, await resp.json()) == (404, NOT_FOUND)


# --- Responses API -------------------------------------------------------------------------

RESP_ID = r"resp_[0-9a-f]{48}"
MSG_ID = r"msg_[0-9a-f]{48}"
RESPONSES_USAGE = {
    "input_tokens": 5,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 3,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 8,
}


def expected_response(
    body: JSON, *, status: str = "completed", usage: Any = RESPONSES_USAGE
) -> JSON:
    assert re.fullmatch(RESP_ID, body["id"])
    assert abs(body["created_at"] - time.time()) < 60
    output = []
    if body["output"]:
        message_id = body["output"][0]["id"]
        assert re.fullmatch(MSG_ID, message_id)
        output = [
            {
                "id": message_id,
                "type": "message",
                "status": "completed",
                "content": [
                    {"type": "output_text", "annotations": [], "logprobs": [], "text": REPLY}
                ],
                "role": "assistant",
            }
        ]
    return {
        "id": body["id"],
        "object": "response",
        "created_at": body["created_at"],
        "status": status,
        "background": status != "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": "Be brief.",
        "max_output_tokens": None,
        "model": "gpt-4o-2024-11-20",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


RESPONSE_BODY: JSON = {"model": "gpt-4o", "input": "Say hi please", "instructions": "Be brief."}


async def test_response_create_get_delete(client: Client, state: EmulatorState) -> None:
    resp = await client.post("/openai/v1/responses", json=RESPONSE_BODY, headers=AUTH)
    assert resp.status == 200
    body = await resp.json()
    assert body == expected_response(body)
    assert set(state.responses) == {body["id"]}
    resp = await client.get(f"/openai/v1/responses/{body['id']}", headers=AUTH)
    assert await resp.json() == body
    resp = await client.delete(f"/openai/v1/responses/{body['id']}", headers=AUTH)
    assert await resp.json() == {"id": body["id"], "object": "response", "deleted": True}
    resp = await client.get(f"/openai/v1/responses/{body['id']}", headers=AUTH)
    assert resp.status == 404
    assert await resp.json() == {
        "error": {
            "message": f"Response with id '{body['id']}' not found.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


@pytest.mark.parametrize(
    ("version", "status"),
    [(GA, 404), ("2025-02-01-preview", 404), ("2025-03-01-preview", 200), (PREVIEW, 200)],
)
async def test_classic_responses_need_2025_03_01_preview(
    client: Client, version: str, status: int
) -> None:
    path = f"/openai/responses?api-version={version}"
    resp = await client.post(path, json=RESPONSE_BODY, headers=AUTH)
    assert resp.status == status
    if status == 404:
        assert await resp.json() == NOT_FOUND


async def test_response_input_items(client: Client) -> None:
    body = {
        "model": "gpt-4o",
        "input": [
            {"role": "system", "content": "Be nice."},
            {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        ],
    }
    created = await (await client.post("/openai/v1/responses", json=body, headers=AUTH)).json()
    path = f"/openai/v1/responses/{created['id']}/input_items"
    items = await (await client.get(path, headers=AUTH)).json()
    system, user = items["data"][1], items["data"][0]  # newest first by default
    assert re.fullmatch(MSG_ID, system["id"])
    assert items == {
        "object": "list",
        "data": [
            {
                "id": user["id"],
                "role": "user",
                "content": [{"type": "input_text", "text": "Hi"}],
                "type": "message",
                "status": "completed",
            },
            {
                "id": system["id"],
                "role": "system",
                "content": [{"type": "input_text", "text": "Be nice."}],
                "type": "message",
                "status": "completed",
            },
        ],
        "first_id": user["id"],
        "last_id": system["id"],
        "has_more": False,
    }
    asc = await (await client.get(f"{path}?order=asc&limit=1", headers=AUTH)).json()
    assert ([i["id"] for i in asc["data"]], asc["has_more"]) == ([system["id"]], True)


async def test_response_stream_events(client: Client, state: EmulatorState) -> None:
    body = {**RESPONSE_BODY, "stream": True}
    resp = await client.post(f"/openai/responses?api-version={PREVIEW}", json=body, headers=AUTH)
    assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    raw = await resp.read()
    assert b"[DONE]" not in raw
    frames = raw.split(b"\n\n")
    assert frames[-1] == b""
    events = []
    for frame in frames[:-1]:
        event_line, data_line = frame.split(b"\n")
        event = orjson.loads(data_line.removeprefix(b"data: "))
        assert event_line == b"event: " + event["type"].encode()
        assert list(event)[:2] == ["type", "sequence_number"]
        events.append(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    final = events[-1]["response"]
    assert final == expected_response(final)
    assert state.responses[final["id"]].body == final
    item_id = final["output"][0]["id"]
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    pending = {**final, "status": "in_progress", "output": [], "usage": None}
    in_progress_item = {
        "id": item_id,
        "type": "message",
        "status": "in_progress",
        "content": [],
        "role": "assistant",
    }
    empty_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    expected = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
        {"type": "response.output_item.added", "output_index": 0, "item": in_progress_item},
        {"type": "response.content_part.added", **where, "part": empty_part},
        *(
            {"type": "response.output_text.delta", **where, "delta": word, "logprobs": []}
            for word in ["Hi", " there,", " friend."]
        ),
        {"type": "response.output_text.done", **where, "text": REPLY, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": final["output"][0]["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": final["output"][0]},
        {"type": "response.completed", "response": final},
    ]
    assert [{k: v for k, v in e.items() if k != "sequence_number"} for e in events] == expected


async def test_response_checks(client: Client, state: EmulatorState) -> None:
    resp = await client.post("/openai/v1/responses", json={"model": "nope"}, headers=AUTH)
    assert (resp.status, await resp.json()) == (404, DEPLOYMENT_NOT_FOUND)
    resp = await client.post("/openai/v1/responses", json={"input": "x"}, headers=AUTH)
    assert (await resp.json())["error"]["param"] == "model"
    body = {"model": "gpt-4o", "input": 3}
    resp = await client.post("/openai/v1/responses", json=body, headers=AUTH)
    assert (await resp.json())["error"]["param"] == "input"
    body = {"model": "gpt-4o", "previous_response_id": "resp_x"}
    resp = await client.post("/openai/v1/responses", json=body, headers=AUTH)
    assert (await resp.json())["error"] == {
        "message": "Previous response with id 'resp_x' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": None,
    }
    for method, suffix in [
        ("GET", ""),
        ("DELETE", ""),
        ("GET", "/input_items"),
        ("POST", "/cancel"),
    ]:
        resp = await client.request(method, f"/openai/v1/responses/resp_x{suffix}", headers=AUTH)
        assert resp.status == 404
    assert not state.responses


async def test_response_not_stored_when_store_is_false(
    client: Client, state: EmulatorState
) -> None:
    body = {**RESPONSE_BODY, "store": False}
    reply = await (await client.post("/openai/v1/responses", json=body, headers=AUTH)).json()
    assert reply["store"] is False
    assert not state.responses


async def test_response_cancel(client: Client, state: EmulatorState) -> None:
    body = {**RESPONSE_BODY, "background": True}
    queued = await (await client.post("/openai/v1/responses", json=body, headers=AUTH)).json()
    assert queued == expected_response(queued, status="queued", usage=None)
    state.add_fault(Fault("status", status=500))
    path = f"/openai/v1/responses/{queued['id']}/cancel"
    assert (await client.post(path, headers=AUTH)).status == 500
    assert state.responses[queued["id"]].body["status"] == "queued"  # a failed cancel did nothing
    cancelled = await (await client.post(path, headers=AUTH)).json()
    assert cancelled == {**queued, "status": "cancelled"}
    got = await client.get(f"/openai/v1/responses/{queued['id']}", headers=AUTH)
    assert (await got.json())["status"] == "cancelled"

    plain = await (
        await client.post("/openai/v1/responses", json=RESPONSE_BODY, headers=AUTH)
    ).json()
    resp = await client.post(f"/openai/v1/responses/{plain['id']}/cancel", headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == (
        "Only responses created with background=true can be cancelled."
    )


async def test_response_429_is_not_stored(client: Client, state: EmulatorState) -> None:
    state.add_fault(Fault("status", status=429, retry_after=1))
    resp = await client.post("/openai/v1/responses", json=RESPONSE_BODY, headers=AUTH)
    assert resp.status == 429
    assert (
        "Responses_Create Operation under Azure OpenAI API version v1"
        in ((await resp.json())["error"]["message"])
    )
    assert not state.responses


# --- files, batches, fine-tuning, vector stores -------------------------------------------


def expected_file(body: JSON, size: int, filename: str, purpose: str) -> JSON:
    assert re.fullmatch(r"file-[0-9a-f]{32}", body["id"])
    assert abs(body["created_at"] - time.time()) < 60
    return {
        "id": body["id"],
        "object": "file",
        "bytes": size,
        "created_at": body["created_at"],
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
    }


async def test_v1_files_lifecycle(client: Client, state: EmulatorState) -> None:
    content = b'{"custom_id": "1"}\n' * 100_000  # ~1.9 MB: spooled past memory to disk
    data = io.BytesIO(multipart(("purpose", "batch"), ("file", ("in.jsonl", content))))
    resp = await client.post("/openai/v1/files", data=data, headers={**AUTH, **FORM})
    assert resp.status == 200
    created = await resp.json()
    assert created == expected_file(created, len(content), "in.jsonl", "batch")
    file_id = created["id"]
    assert state.files[file_id].meta == created

    listed = await (await client.get("/openai/v1/files", headers=AUTH)).json()
    assert listed == {"object": "list", "data": [created], "has_more": False}
    filtered = await client.get("/openai/v1/files?purpose=fine-tune", headers=AUTH)
    assert (await filtered.json())["data"] == []
    got = await client.get(f"/openai/v1/files/{file_id}", headers=AUTH)
    assert await got.json() == created
    download = await client.get(f"/openai/v1/files/{file_id}/content", headers=AUTH)
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert await download.read() == content

    deleted = await client.delete(f"/openai/v1/files/{file_id}", headers=AUTH)
    assert await deleted.json() == {"id": file_id, "object": "file", "deleted": True}
    assert not state.files
    missing = await client.get(f"/openai/v1/files/{file_id}", headers=AUTH)
    assert missing.status == 404
    assert (await missing.json())["error"]["message"] == f"No such File object: {file_id}"


async def test_classic_file_upload_is_201_with_location(
    client: Client, state: EmulatorState
) -> None:
    data = multipart(("file", ("ft.jsonl", b"{}\n")), ("purpose", "fine-tune"))
    path = f"/openai/files?api-version={GA}"
    resp = await client.post(path, data=data, headers={**AUTH, **FORM})
    assert resp.status == 201
    created = await resp.json()
    assert created == expected_file(created, 3, "ft.jsonl", "fine-tune")
    assert resp.headers["Location"] == str(
        client.make_url(f"/openai/files/{created['id']}?api-version={GA}")
    )
    # One store: the v1 surface sees what the classic one uploaded.
    got = await client.get(f"/openai/v1/files/{created['id']}", headers=AUTH)
    assert await got.json() == created
    assert (await client.get("/openai/files", headers=AUTH)).status == 404


async def test_file_expires_after(client: Client) -> None:
    data = multipart(
        ("file", ("a.jsonl", b"{}")),
        ("purpose", "batch"),
        ("expires_after[anchor]", "created_at"),
        ("expires_after[seconds]", "1209600"),
    )
    created = await (
        await client.post("/openai/v1/files", data=data, headers={**AUTH, **FORM})
    ).json()
    assert created["expires_at"] == created["created_at"] + 1209600


@pytest.mark.parametrize(
    ("parts", "param"),
    [
        ((("purpose", "batch"),), "file"),
        ((("file", ("a", b"x")),), "purpose"),
        ((("file", ("a", b"x")), ("purpose", "nope")), "purpose"),
        (
            (("file", ("a", b"x")), ("purpose", "batch"), ("expires_after[anchor]", "now")),
            "expires_after.anchor",
        ),
    ],
)
async def test_file_upload_validation(
    client: Client,
    state: EmulatorState,
    parts: tuple[tuple[str, str | tuple[str, bytes]], ...],
    param: str,
) -> None:
    resp = await client.post("/openai/v1/files", data=multipart(*parts), headers={**AUTH, **FORM})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == param
    assert not state.files


async def test_file_upload_failed_by_a_fault_is_not_kept(
    client: Client, state: EmulatorState
) -> None:
    state.add_fault(Fault("status", status=503))
    data = multipart(("file", ("a", b"x")), ("purpose", "batch"))
    resp = await client.post("/openai/v1/files", data=data, headers={**AUTH, **FORM})
    assert resp.status == 503
    assert not state.files


async def test_batches_lifecycle(client: Client) -> None:
    base = "/openai/batches"
    query = f"?api-version={GA}"
    body = {"input_file_id": "file-1", "endpoint": "/chat/completions", "completion_window": "24h"}
    created = await (await client.post(base + query, json=body, headers=AUTH)).json()
    assert re.fullmatch(r"batch_[0-9a-f-]{36}", created["id"])
    now = created["created_at"]
    assert created == {
        "id": created["id"],
        "object": "batch",
        "endpoint": "/chat/completions",
        "errors": None,
        "input_file_id": "file-1",
        "completion_window": "24h",
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": now,
        "in_progress_at": None,
        "expires_at": now + 86400,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": None,
    }
    listed = await (await client.get(base + query, headers=AUTH)).json()
    assert listed == {
        "object": "list",
        "data": [created],
        "first_id": created["id"],
        "last_id": created["id"],
        "has_more": False,
    }
    got = await client.get(f"{base}/{created['id']}{query}", headers=AUTH)
    assert await got.json() == created
    cancelled = await (
        await client.post(f"{base}/{created['id']}/cancel{query}", headers=AUTH)
    ).json()
    assert cancelled["status"] == "cancelling"
    assert abs(cancelled["cancelling_at"] - time.time()) < 60
    missing = await client.get(f"{base}/batch_x{query}", headers=AUTH)
    assert missing.status == 404
    assert (await missing.json())["error"]["message"] == "No batch found with id 'batch_x'."
    bad = await client.post(base + query, json={"endpoint": "/embeddings"}, headers=AUTH)
    assert (await bad.json())["error"]["param"] == "input_file_id"
    # Azure's v1 surface has no batches.
    assert (await client.get("/openai/v1/batches", headers=AUTH)).status == 404


async def test_fine_tuning_jobs(client: Client) -> None:
    base = "/openai/v1/fine_tuning/jobs"
    body = {"model": "gpt-4o-mini", "training_file": "file-abc", "seed": 7, "suffix": "x"}
    created = await (await client.post(base, json=body, headers=AUTH)).json()
    assert re.fullmatch(r"ftjob-[0-9a-f]{32}", created["id"])
    auto = {"batch_size": "auto", "learning_rate_multiplier": "auto", "n_epochs": "auto"}
    assert created == {
        "id": created["id"],
        "object": "fine_tuning.job",
        "created_at": created["created_at"],
        "error": None,
        "fine_tuned_model": None,
        "finished_at": None,
        "hyperparameters": auto,
        "model": "gpt-4o-mini",
        "organization_id": "",
        "result_files": [],
        "seed": 7,
        "status": "pending",
        "trained_tokens": None,
        "training_file": "file-abc",
        "validation_file": None,
        "estimated_finish": None,
        "integrations": None,
        "metadata": None,
        "method": {"type": "supervised", "supervised": {"hyperparameters": auto}},
        "suffix": "x",
    }
    listed = await (await client.get(base, headers=AUTH)).json()
    assert listed == {"object": "list", "data": [created], "has_more": False}
    cancel = await client.post(f"{base}/{created['id']}/cancel", headers=AUTH)
    assert (await cancel.json())["status"] == "cancelled"
    got = await client.get(
        f"/openai/fine_tuning/jobs/{created['id']}?api-version={GA}", headers=AUTH
    )
    assert (await got.json())["status"] == "cancelled"


async def test_vector_stores(client: Client) -> None:
    base = "/openai/v1/vector_stores"
    body = {"name": "docs", "file_ids": ["file-1", "file-2"]}
    created = await (await client.post(base, json=body, headers=AUTH)).json()
    assert re.fullmatch(r"vs_[A-Za-z0-9]{24}", created["id"])
    assert created == {
        "id": created["id"],
        "object": "vector_store",
        "created_at": created["created_at"],
        "name": "docs",
        "usage_bytes": 0,
        "file_counts": {"in_progress": 0, "completed": 2, "failed": 0, "cancelled": 0, "total": 2},
        "status": "completed",
        "expires_after": None,
        "expires_at": None,
        "last_active_at": created["created_at"],
        "metadata": {},
    }
    listed = await (await client.get(base, headers=AUTH)).json()
    assert listed["data"] == [created]
    deleted = await client.delete(f"{base}/{created['id']}", headers=AUTH)
    assert await deleted.json() == {
        "id": created["id"],
        "object": "vector_store.deleted",
        "deleted": True,
    }
    assert (await client.get(f"{base}/{created['id']}", headers=AUTH)).status == 404
    assert (await client.get(f"/openai/vector_stores?api-version={GA}", headers=AUTH)).status == 404


async def test_resource_routes_check_key_and_api_version(client: Client) -> None:
    assert (await client.get("/openai/v1/files")).status == 401
    assert (await client.get(f"/openai/batches?api-version={GA}")).status == 401
    assert (await client.get("/openai/v1/files?api-version=2024-10-21", headers=AUTH)).status == 400
    assert (await client.get("/openai/batches", headers=AUTH)).status == 404


# --- realtime ------------------------------------------------------------------------------


async def receive(ws: aiohttp.ClientWebSocketResponse) -> JSON:
    async with asyncio.timeout(5):
        event: JSON = await ws.receive_json()
    return event


async def test_realtime_ga_round_trip(client: Client, state: EmulatorState) -> None:
    async with client.ws_connect("/openai/v1/realtime?model=gpt-realtime", headers=AUTH) as ws:
        created = await receive(ws)
        assert created["type"] == "session.created"
        assert re.fullmatch(r"event_[A-Za-z0-9]{22}", created["event_id"])
        session = created["session"]
        assert re.fullmatch(r"sess_[A-Za-z0-9]{22}", session["id"])
        assert (session["type"], session["object"], session["model"]) == (
            "realtime",
            "realtime.session",
            "gpt-realtime",
        )
        assert state.realtime_sessions == 1

        await ws.send_json({"type": "session.update", "session": {"instructions": "Be brief."}})
        updated = await receive(ws)
        assert updated["type"] == "session.updated"
        assert updated["session"] == {**session, "instructions": "Be brief."}

        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Hi"}],
        }
        await ws.send_json({"type": "conversation.item.create", "item": item})
        added = await receive(ws)
        assert added["type"] == "conversation.item.created"
        assert added["previous_item_id"] is None
        assert added["item"] == {
            "id": added["item"]["id"],
            "object": "realtime.item",
            "status": "completed",
            **item,
        }

        await ws.send_json({"type": "response.create"})
        events = [await receive(ws)]
        while events[-1]["type"] != "response.done":
            events.append(await receive(ws))
        assert [e["type"] for e in events] == [
            "response.created",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.done",
        ]
        assert "".join(e["delta"] for e in events[3:6]) == REPLY
        done = events[-1]["response"]
        assert done["status"] == "completed"
        assert done["output"][0]["content"] == [{"type": "output_text", "text": REPLY}]

        await ws.send_bytes(b"\x00\x01binary")
        async with asyncio.timeout(5):
            echoed = await ws.receive_bytes()
        assert echoed == b"\x00\x01binary"

        await ws.send_str("not json")
        error = await receive(ws)
        assert (error["type"], error["error"]["type"]) == ("error", "invalid_request_error")
    await asyncio.wait_for(state.realtime_closed.wait(), 5)
    assert [e.get("type") for e in state.realtime_events] == [
        "session.update",
        "conversation.item.create",
        "response.create",
        None,
    ]
    assert state.realtime_events[-1] == {"raw": "not json"}
    handshake = state.last_request
    assert (handshake.method, handshake.path) == ("GET", "/openai/v1/realtime")


async def test_realtime_preview_speaks_beta_events(client: Client, state: EmulatorState) -> None:
    path = f"/openai/realtime?api-version={PREVIEW}&deployment=gpt-realtime&api-key={KEY}"
    async with client.ws_connect(path) as ws:
        session = (await receive(ws))["session"]
        assert "type" not in session
        assert (session["model"], session["modalities"]) == ("gpt-realtime", ["text", "audio"])
        await ws.send_json({"type": "response.create", "event_id": "c1"})
        kinds: list[str] = []
        while not kinds or kinds[-1] != "response.done":
            kinds.append((await receive(ws))["type"])
        assert "response.text.delta" in kinds
        assert "response.output_text.delta" not in kinds


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/openai/v1/realtime?model=gpt-realtime", {}, 401),
        ("/openai/v1/realtime?model=gpt-realtime", {"api-key": "wrong"}, 401),
        ("/openai/v1/realtime?model=gpt-realtime&api-key=wrong", {}, 401),
        ("/openai/v1/realtime?model=gpt-nope", AUTH, 404),
        ("/openai/v1/realtime", AUTH, 400),
        (f"/openai/v1/realtime?model=gpt-realtime&api-version={GA}", AUTH, 400),
        ("/openai/realtime?deployment=gpt-realtime", AUTH, 404),
        (f"/openai/realtime?api-version={GA}&deployment=gpt-realtime", AUTH, 404),
    ],
)
async def test_realtime_handshake_is_refused_before_upgrade(
    client: Client, state: EmulatorState, path: str, headers: dict[str, str], status: int
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
        await client.ws_connect(path, headers=headers)
    assert raised.value.status == status
    assert state.realtime_sessions == 0


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/openai/v1/realtime?model=gpt-realtime", BEARER),
        (f"/openai/v1/realtime?model=gpt-realtime&api-key={KEY}", {}),
        (f"/openai/realtime?api-version={PREVIEW}&deployment=gpt-realtime", AUTH),
    ],
)
async def test_realtime_key_sources(client: Client, path: str, headers: dict[str, str]) -> None:
    async with client.ws_connect(path, headers=headers) as ws:
        assert (await receive(ws))["type"] == "session.created"


async def test_realtime_plain_get_is_refused(client: Client) -> None:
    resp = await client.get("/openai/v1/realtime?model=gpt-realtime", headers=AUTH)
    assert resp.status == 400


async def test_realtime_faults(client: Client, state: EmulatorState) -> None:
    state.add_fault(Fault("status", status=429))
    with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
        await client.ws_connect("/openai/v1/realtime?model=gpt-realtime", headers=AUTH)
    assert raised.value.status == 429

    state.add_fault(Fault("reset"))
    async with client.ws_connect("/openai/v1/realtime?model=gpt-realtime", headers=AUTH) as ws:
        assert (await receive(ws))["type"] == "session.created"
        async with asyncio.timeout(5):
            closing = await ws.receive()
        assert closing.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)

    release = asyncio.Event()
    state.add_fault(Fault("hold", release=release))
    async with client.ws_connect("/openai/v1/realtime?model=gpt-realtime", headers=AUTH) as ws:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await ws.receive()
        release.set()
        assert (await receive(ws))["type"] == "session.created"


# --- ARM -----------------------------------------------------------------------------------

ARM = (
    "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.CognitiveServices/"
    "accounts/acct/deployments"
)


def arm_item(name: str, model: str, version: str) -> JSON:
    return {
        "id": f"{ARM}/{name}",
        "type": "Microsoft.CognitiveServices/accounts/deployments",
        "name": name,
        "sku": {"name": "Standard", "capacity": 10},
        "properties": {
            "model": {"format": "OpenAI", "name": model, "version": version},
            "versionUpgradeOption": "OnceNewDefaultVersionAvailable",
            "provisioningState": "Succeeded",
        },
    }


async def test_arm_lists_the_deployments(aiohttp_client: AiohttpClient) -> None:
    state = EmulatorState(deployments=["prod-4o", "whisper", "text-embedding-3-small"])
    client = await aiohttp_client(create_emulator_app(state))
    resp = await client.get(f"{ARM}?api-version=2024-10-01", headers={"Authorization": "Bearer t"})
    assert resp.status == 200
    assert "apim-request-id" not in resp.headers
    assert "x-ms-request-id" in resp.headers
    assert await resp.json() == {
        "value": [
            arm_item("prod-4o", "gpt-4o", "2024-11-20"),
            arm_item("text-embedding-3-small", "text-embedding-3-small", "1"),
            arm_item("whisper", "whisper", "001"),
        ]
    }


async def test_arm_default_deployments(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_emulator_app(EmulatorState()))
    path = ARM.lower() + "?api-version=2024-10-01"  # ARM paths are case-insensitive
    resp = await client.get(path, headers={"Authorization": "Bearer anything"})
    names = [d["name"] for d in (await resp.json())["value"]]
    assert names == ["gpt-4o", "gpt-35-turbo", "text-embedding-3-small"]
    models = [d["properties"]["model"]["name"] for d in (await resp.json())["value"]]
    assert models == ["gpt-4o", "gpt-35-turbo", "text-embedding-3-small"]


async def test_arm_errors(client: Client) -> None:
    resp = await client.get(f"{ARM}?api-version=2024-10-01")
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "AuthenticationFailed"
    resp = await client.get(ARM, headers={"Authorization": "Bearer t"})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "MissingApiVersionParameter"
    resp = await client.get("/subscriptions/x/other?api-version=1", headers=BEARER)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "ResourceNotFound"


# --- the openai SDK against the emulator ---------------------------------------------------


async def test_sdk_images_generate(azure_sdk: AsyncAzureOpenAI, state: EmulatorState) -> None:
    result = await azure_sdk.images.generate(model="dall-e-3", prompt="a cat")
    assert result.data is not None
    [image] = result.data
    assert image.url is not None
    assert image.url.startswith("https://emulator.invalid/img/")
    assert image.revised_prompt == "Emulator rendering of: a cat"
    assert state.last_request.path == "/openai/deployments/dall-e-3/images/generations"
    encoded = await azure_sdk.images.generate(
        model="dall-e-3", prompt="a cat", response_format="b64_json"
    )
    assert encoded.data is not None
    assert encoded.data[0].b64_json is not None
    assert_png(base64.b64decode(encoded.data[0].b64_json))


async def test_sdk_transcription(azure_sdk: AsyncAzureOpenAI, state: EmulatorState) -> None:
    audio = make_wav(1.5)
    result = await azure_sdk.audio.transcriptions.create(
        model="whisper", file=("speech.wav", audio)
    )
    assert result.text == f"Emulator transcription of speech.wav ({len(audio)} bytes)."
    assert state.last_request.path == "/openai/deployments/whisper/audio/transcriptions"
    assert state.last_upload is not None
    assert state.last_upload.files["file"] == UploadedFile("speech.wav", len(audio), sha(audio))
    verbose = await azure_sdk.audio.transcriptions.create(
        model="whisper", file=("speech.wav", audio), response_format="verbose_json"
    )
    assert (verbose.duration, verbose.language) == (1.5, "english")


async def test_sdk_speech(azure_sdk: AsyncAzureOpenAI) -> None:
    async with azure_sdk.audio.speech.with_streaming_response.create(
        model="tts", voice="alloy", input="Hello there", response_format="wav"
    ) as response:
        chunks = [chunk async for chunk in response.iter_bytes()]
    with wave.open(io.BytesIO(b"".join(chunks))) as audio:
        assert audio.getnframes() == 12000


async def test_sdk_responses(azure_sdk: AsyncAzureOpenAI, state: EmulatorState) -> None:
    response = await azure_sdk.responses.create(model="gpt-4o", input="Say hi")
    assert response.output_text == REPLY
    assert response.usage is not None
    assert response.usage.output_tokens == 3
    assert state.last_request.path == "/openai/responses"
    assert state.last_request.query == {"api-version": PREVIEW}
    retrieved = await azure_sdk.responses.retrieve(response.id)
    assert retrieved.id == response.id
    items = await azure_sdk.responses.input_items.list(response.id)
    assert [item.type for item in items.data] == ["message"]
    await azure_sdk.responses.delete(response.id)
    with pytest.raises(NotFoundError):
        await azure_sdk.responses.retrieve(response.id)


async def test_sdk_responses_stream(azure_sdk: AsyncAzureOpenAI) -> None:
    stream = await azure_sdk.responses.create(model="gpt-4o", input="Say hi", stream=True)
    kinds, deltas = [], []
    async for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        if event.type == "response.completed":
            assert event.response.output_text == REPLY
    assert "".join(deltas) == REPLY
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"


async def test_sdk_files(azure_sdk: AsyncAzureOpenAI) -> None:
    content = b'{"custom_id": "r1"}\n'
    created = await azure_sdk.files.create(file=("in.jsonl", content), purpose="batch")
    assert (created.bytes, created.filename, created.status) == (
        len(content),
        "in.jsonl",
        "processed",
    )
    listed = await azure_sdk.files.list()
    assert [f.id for f in listed.data] == [created.id]
    downloaded = await azure_sdk.files.content(created.id)
    assert downloaded.content == content
    deleted = await azure_sdk.files.delete(created.id)
    assert deleted.deleted
    assert deleted.id == created.id
    assert (await azure_sdk.files.list()).data == []


async def test_sdk_on_the_v1_surface(v1_sdk: AsyncOpenAI, state: EmulatorState) -> None:
    response = await v1_sdk.responses.create(model="gpt-4o", input="Say hi")
    assert response.output_text == REPLY
    chat = await v1_sdk.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert chat.choices[0].message.content == REPLY
    assert state.last_request.headers["Authorization"] == f"Bearer {KEY}"
    job = await v1_sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file="file-1")
    assert (await v1_sdk.fine_tuning.jobs.cancel(job.id)).status == "cancelled"
    store = await v1_sdk.vector_stores.create(name="docs")
    assert (await v1_sdk.vector_stores.delete(store.id)).deleted
    models = await v1_sdk.models.list()
    assert "gpt-4o" in [m.id for m in models.data]


async def test_sdk_realtime(v1_sdk: AsyncOpenAI, state: EmulatorState) -> None:
    async with v1_sdk.realtime.connect(model="gpt-realtime") as connection:
        assert (await connection.recv()).type == "session.created"
        await connection.send({"type": "response.create"})
        deltas = []
        async for event in connection:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
            if event.type == "response.done":
                break
    assert "".join(deltas) == REPLY
    await asyncio.wait_for(state.realtime_closed.wait(), 5)
