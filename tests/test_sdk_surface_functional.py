"""The whole API surface end to end with the official `openai` package, through the gateway.

Each test drives the real SDK (`AsyncOpenAI` on `/v1`, or `AsyncAzureOpenAI` on the gateway as
its Azure endpoint) against the gateway in front of the emulator, and checks both what the user
gets back and what Azure (the emulator) received: path, query, key and body or upload.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import struct
import tracemalloc
import warnings
import wave
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import openai
import orjson
import pytest

from azproxy.emulator import EmulatorState, UploadedFile

from .support import KEY, Gateway, GatewayFactory, auth

REPLY = "The quick brown fox jumps over the lazy dog."
GA = "2024-10-21"  # the gateway's default api-version
PREVIEW = "2025-04-01-preview"  # what AzureOpenAI clients here ask for; also images_edits' default
WAIT = 10.0
MB = 1024 * 1024
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@asynccontextmanager
async def openai_client(gateway: Gateway) -> AsyncIterator[openai.AsyncOpenAI]:
    """The stock client with the gateway as its base URL."""
    async with openai.AsyncOpenAI(
        base_url=str(gateway.url("/v1")), api_key=KEY, max_retries=0, timeout=WAIT
    ) as client:
        yield client


@asynccontextmanager
async def azure_client(gateway: Gateway) -> AsyncIterator[openai.AsyncAzureOpenAI]:
    """The Azure client with the gateway as its Azure endpoint."""
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=str(gateway.url("")),
        api_version=PREVIEW,
        api_key=KEY,
        max_retries=0,
        timeout=WAIT,
    ) as client:
        yield client


def make_wav(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    """A small valid WAV: a 440 Hz square-ish tone, 16-bit mono."""
    period = rate // 440
    frames = b"".join(
        struct.pack("<h", 8000 if (i % period) < period // 2 else -8000)
        for i in range(round(rate * seconds))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


def make_png() -> bytes:
    """A valid 2x2 RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def body_of(emulator: EmulatorState) -> dict[str, object]:
    body = orjson.loads(emulator.last_request.body)
    assert isinstance(body, dict)
    return body


# --- images ---------------------------------------------------------------------------------


async def test_images_generate(gateway: Gateway, emulator: EmulatorState) -> None:
    async with openai_client(gateway) as client:
        result = await client.images.generate(model="dall-e-3", prompt="a cat", size="1024x1024")
    assert result.data is not None
    [image] = result.data
    assert image.url is not None
    assert image.url.startswith("https://emulator.invalid/img/")
    assert image.revised_prompt == "Emulator rendering of: a cat"
    received = emulator.last_request
    assert received.path == "/openai/deployments/dall-e-3/images/generations"
    assert received.query == {"api-version": GA}
    assert received.headers["api-key"] == KEY
    assert body_of(emulator) == {"model": "dall-e-3", "prompt": "a cat", "size": "1024x1024"}


async def test_images_edit_goes_to_the_preview_version(
    gateway: Gateway, emulator: EmulatorState
) -> None:
    png = make_png()
    async with openai_client(gateway) as client:
        result = await client.images.edit(
            model="gpt-image-1", image=("in.png", png, "image/png"), prompt="make it blue"
        )
    assert result.data is not None
    [image] = result.data
    assert image.b64_json is not None
    assert result.usage is not None
    assert result.usage.input_tokens_details.image_tokens == 65
    received = emulator.last_request
    assert received.path == "/openai/deployments/gpt-image-1/images/edits"
    assert received.query == {"api-version": PREVIEW}
    assert received.headers["api-key"] == KEY
    upload = emulator.last_upload
    assert upload is not None
    assert upload.files["image"] == UploadedFile("in.png", len(png), sha(png))
    assert upload.fields == {"model": "gpt-image-1", "prompt": "make it blue"}


# --- audio ----------------------------------------------------------------------------------


async def test_transcription_upload(gateway: Gateway, emulator: EmulatorState) -> None:
    audio = make_wav(1.5)
    async with openai_client(gateway) as client:
        result = await client.audio.transcriptions.create(
            model="whisper", file=("speech.wav", audio, "audio/wav")
        )
    assert result.text == f"Emulator transcription of speech.wav ({len(audio)} bytes)."
    received = emulator.last_request
    assert received.path == "/openai/deployments/whisper/audio/transcriptions"
    assert received.query == {"api-version": GA}
    assert received.headers["api-key"] == KEY
    upload = emulator.last_upload
    assert upload is not None
    assert upload.files["file"] == UploadedFile("speech.wav", len(audio), sha(audio))
    assert upload.fields["model"] == "whisper"


async def test_transcription_upload_with_azure_client(
    start_gateway: GatewayFactory, emulator: EmulatorState
) -> None:
    # The deployment in an Azure-style path goes through the mapper too.
    gateway = await start_gateway(AZURE_OPENAI_MODEL_MAPPER="whisper=whisper-prod")
    audio = make_wav(0.5)
    async with azure_client(gateway) as client:
        result = await client.audio.transcriptions.create(
            model="whisper", file=("hello.wav", audio), response_format="verbose_json"
        )
    assert result.text == f"Emulator transcription of hello.wav ({len(audio)} bytes)."
    assert result.duration == 0.5
    received = emulator.last_request
    assert received.path == "/openai/deployments/whisper-prod/audio/transcriptions"
    assert received.query == {"api-version": PREVIEW}  # the client's version is kept
    assert received.headers["api-key"] == KEY
    upload = emulator.last_upload
    assert upload is not None
    assert upload.files["file"] == UploadedFile("hello.wav", len(audio), sha(audio))
    assert upload.fields["response_format"] == "verbose_json"


async def test_translation_upload(gateway: Gateway, emulator: EmulatorState) -> None:
    audio = make_wav(0.25)
    async with openai_client(gateway) as client:
        # OpenAI deprecated translations in the SDK; Azure still serves them.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            result = await client.audio.translations.create(model="whisper", file=("fr.wav", audio))
    assert result.text == f"Emulator translation of fr.wav ({len(audio)} bytes)."
    received = emulator.last_request
    assert received.path == "/openai/deployments/whisper/audio/translations"
    assert received.query == {"api-version": GA}
    assert received.headers["api-key"] == KEY
    upload = emulator.last_upload
    assert upload is not None
    assert upload.files["file"] == UploadedFile("fr.wav", len(audio), sha(audio))


async def test_speech_streamed_download(
    gateway: Gateway, emulator: EmulatorState, azure_url: str, http: aiohttp.ClientSession
) -> None:
    request = {"model": "tts", "voice": "alloy", "input": "Hello there, how are you today?"}
    async with (
        openai_client(gateway) as client,
        asyncio.timeout(WAIT),
        client.audio.speech.with_streaming_response.create(
            model="tts", voice="alloy", input=request["input"]
        ) as response,
    ):
        assert response.headers["content-type"] == "audio/mpeg"
        chunks = [chunk async for chunk in response.iter_bytes()]
    received = emulator.last_request
    assert received.path == "/openai/deployments/tts/audio/speech"
    assert received.query == {"api-version": GA}
    assert received.headers["api-key"] == KEY
    assert body_of(emulator) == request
    # What the emulator sends when asked directly, byte for byte.
    direct_url = f"{azure_url}/openai/deployments/tts/audio/speech?api-version={GA}"
    async with http.post(direct_url, json=request, headers={"api-key": KEY}) as direct:
        assert direct.status == 200
        expected = await direct.read()
    assert b"".join(chunks) == expected
    assert len(expected) == 64 * 1024


# --- responses ------------------------------------------------------------------------------


async def test_responses_create_retrieve_delete(
    start_gateway: GatewayFactory, emulator: EmulatorState
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_MODEL_MAPPER="gpt-4o=prod-4o")
    emulator.reply = REPLY
    async with openai_client(gateway) as client:
        response = await client.responses.create(model="gpt-4o", input="Say hi")
        assert response.output_text == REPLY
        assert response.status == "completed"
        created = emulator.last_request
        assert (created.method, created.path, created.query) == ("POST", "/openai/v1/responses", {})
        assert created.headers["api-key"] == KEY
        assert orjson.loads(created.body) == {"model": "prod-4o", "input": "Say hi"}

        retrieved = await client.responses.retrieve(response.id)
        assert (retrieved.id, retrieved.output_text) == (response.id, REPLY)
        got = emulator.last_request
        assert (got.method, got.path) == ("GET", f"/openai/v1/responses/{response.id}")

        items = [item.type async for item in client.responses.input_items.list(response.id)]
        assert items == ["message"]
        assert emulator.last_request.path == f"/openai/v1/responses/{response.id}/input_items"

        await client.responses.delete(response.id)
        deleted = emulator.last_request
        assert (deleted.method, deleted.path) == ("DELETE", f"/openai/v1/responses/{response.id}")
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(response.id)
    assert emulator.responses == {}


async def test_responses_stream(gateway: Gateway, emulator: EmulatorState) -> None:
    emulator.reply = REPLY
    kinds: list[str] = []
    deltas: list[str] = []
    final: openai.types.responses.Response | None = None
    async with openai_client(gateway) as client, asyncio.timeout(WAIT):
        stream = await client.responses.create(model="gpt-4o", input="Say hi", stream=True)
        async for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
            elif event.type == "response.completed":
                final = event.response
    assert "".join(deltas) == REPLY
    assert len(deltas) > 3  # word by word
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert final is not None
    assert final.output_text == REPLY
    received = emulator.last_request
    assert (received.path, received.query) == ("/openai/v1/responses", {})
    assert body_of(emulator) == {"model": "gpt-4o", "input": "Say hi", "stream": True}


# --- files, batches, fine-tuning, vector stores ----------------------------------------------


BATCH_LINE = {
    "custom_id": "r1",
    "method": "POST",
    "url": "/chat/completions",
    "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
}


async def test_files_upload_list_retrieve_content_delete(
    gateway: Gateway, emulator: EmulatorState
) -> None:
    content = orjson.dumps(BATCH_LINE) + b"\n" + orjson.dumps({**BATCH_LINE, "custom_id": "r2"})
    async with openai_client(gateway) as client:
        created = await client.files.create(file=("in.jsonl", content), purpose="batch")
        assert (created.bytes, created.filename, created.purpose, created.status) == (
            len(content),
            "in.jsonl",
            "batch",
            "processed",
        )
        upload = emulator.last_request
        assert (upload.method, upload.path, upload.query) == ("POST", "/openai/v1/files", {})
        assert upload.headers["api-key"] == KEY
        assert emulator.last_upload is not None
        assert emulator.last_upload.files["file"] == UploadedFile(
            "in.jsonl", len(content), sha(content)
        )
        assert emulator.last_upload.fields == {"purpose": "batch"}

        listed = [f.id async for f in client.files.list()]
        assert listed == [created.id]
        assert emulator.last_request.path == "/openai/v1/files"

        retrieved = await client.files.retrieve(created.id)
        assert (retrieved.id, retrieved.bytes) == (created.id, len(content))

        downloaded = await client.files.content(created.id)
        assert downloaded.content == content
        assert emulator.last_request.path == f"/openai/v1/files/{created.id}/content"

        deleted = await client.files.delete(created.id)
        assert (deleted.id, deleted.deleted) == (created.id, True)
        assert (emulator.last_request.method, emulator.last_request.path) == (
            "DELETE",
            f"/openai/v1/files/{created.id}",
        )
        assert [f.id async for f in client.files.list()] == []


async def test_batches_with_an_uploaded_file(gateway: Gateway, emulator: EmulatorState) -> None:
    async with openai_client(gateway) as client:
        file = await client.files.create(
            file=("batch.jsonl", orjson.dumps(BATCH_LINE) + b"\n"), purpose="batch"
        )
        batch = await client.batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        created = emulator.last_request
        listed = [b.id async for b in client.batches.list()]
        retrieved = await client.batches.retrieve(batch.id)
    assert (batch.input_file_id, batch.status, batch.endpoint) == (
        file.id,
        "validating",
        "/v1/chat/completions",
    )
    assert listed == [batch.id]
    assert retrieved.id == batch.id
    # Azure's v1 surface lacks batches: they stay on the classic route.
    assert (created.method, created.path, created.query) == (
        "POST",
        "/openai/batches",
        {"api-version": GA},
    )
    assert created.headers["api-key"] == KEY
    assert orjson.loads(created.body) == {
        "input_file_id": file.id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    assert emulator.last_request.path == f"/openai/batches/{batch.id}"


async def test_fine_tuning_jobs(gateway: Gateway, emulator: EmulatorState) -> None:
    async with openai_client(gateway) as client:
        assert [job.id async for job in client.fine_tuning.jobs.list()] == []
        assert (emulator.last_request.path, emulator.last_request.query) == (
            "/openai/v1/fine_tuning/jobs",
            {},
        )
        job = await client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file="file-1")
        listed = [j.id async for j in client.fine_tuning.jobs.list(limit=5)]
    assert (job.model, job.training_file) == ("gpt-4o-mini", "file-1")
    assert listed == [job.id]
    received = emulator.last_request
    assert (received.path, received.query) == ("/openai/v1/fine_tuning/jobs", {"limit": "5"})
    assert received.headers["api-key"] == KEY


async def test_vector_stores(gateway: Gateway, emulator: EmulatorState) -> None:
    async with openai_client(gateway) as client:
        store = await client.vector_stores.create(name="docs")
        created = emulator.last_request
        listed = [s.id async for s in client.vector_stores.list()]
    assert store.name == "docs"
    assert store.status == "completed"
    assert listed == [store.id]
    assert (created.method, created.path, created.query) == ("POST", "/openai/v1/vector_stores", {})
    assert created.headers["api-key"] == KEY
    assert orjson.loads(created.body) == {"name": "docs"}
    assert emulator.last_request.path == "/openai/v1/vector_stores"


# --- realtime -------------------------------------------------------------------------------


async def test_realtime_session_round_trip(gateway: Gateway, emulator: EmulatorState) -> None:
    emulator.reply = REPLY
    base = str(gateway.url("/v1"))
    deltas: list[str] = []
    async with (
        openai.AsyncOpenAI(
            base_url=base,
            websocket_base_url=base.replace("http", "ws", 1),
            api_key=KEY,
            max_retries=0,
        ) as client,
        asyncio.timeout(WAIT),
    ):
        async with client.realtime.connect(model="gpt-realtime") as connection:
            created = await connection.recv()
            assert created.type == "session.created"
            await connection.session.update(
                session={
                    "type": "realtime",
                    "instructions": "Be brief.",
                    "output_modalities": ["text"],
                }
            )
            updated = await connection.recv()
            assert updated.type == "session.updated"
            await connection.response.create()
            async for event in connection:
                if event.type == "response.output_text.delta":
                    deltas.append(event.delta)
                elif event.type == "response.done":
                    assert event.response.status == "completed"
                    break
        await emulator.realtime_closed.wait()
    assert "".join(deltas) == REPLY
    assert [event["type"] for event in emulator.realtime_events] == [
        "session.update",
        "response.create",
    ]
    assert emulator.realtime_events[0]["session"]["instructions"] == "Be brief."
    handshake = emulator.last_request
    assert handshake.path == "/openai/v1/realtime"
    assert handshake.query == {"model": "gpt-realtime"}
    assert handshake.headers["api-key"] == KEY


# --- what Azure lacks, and the v1 upstream ---------------------------------------------------


async def test_moderations_are_refused_as_unsupported(
    gateway: Gateway, emulator: EmulatorState
) -> None:
    async with openai_client(gateway) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await client.moderations.create(input="something")
    assert caught.value.status_code == 404
    assert caught.value.code == "unsupported_on_azure"
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == "unsupported_on_azure"
    assert "Azure OpenAI does not offer" in body["message"]
    assert emulator.requests == []


async def test_chat_stream_on_the_v1_upstream(
    start_gateway: GatewayFactory, emulator: EmulatorState
) -> None:
    gateway = await start_gateway(
        AZURE_OPENAI_APIVERSION="v1", AZURE_OPENAI_MODEL_MAPPER="gpt-4o=prod-4o"
    )
    emulator.reply = REPLY
    async with openai_client(gateway) as client, asyncio.timeout(WAIT):
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True
        )
        chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
    # The normaliser: every chunk OpenAI-shaped, named after the model the client asked for.
    assert all(c.choices for c in chunks)
    assert {c.model for c in chunks} == {"gpt-4o"}
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    received = emulator.last_request
    assert (received.path, received.query) == ("/openai/v1/chat/completions", {})
    assert received.headers["api-key"] == KEY
    assert body_of(emulator) == {"messages": MESSAGES, "model": "prod-4o", "stream": True}
    assert emulator.completed_streams == 1


# --- a 25 MB upload with the model after the file --------------------------------------------


UPLOAD_SIZE = 25 * MB
BLOCK = 64 * 1024


async def test_25mb_upload_with_the_model_after_the_file(
    gateway: Gateway, emulator: EmulatorState, http: aiohttp.ClientSession
) -> None:
    digest = hashlib.sha256()

    async def audio() -> AsyncIterator[bytes]:
        # Produced block by block and hashed on the way out: never held whole.
        for _ in range(UPLOAD_SIZE // BLOCK):
            block = os.urandom(BLOCK)
            digest.update(block)
            yield block

    with aiohttp.MultipartWriter("form-data") as form:
        file_part = form.append(audio(), {"Content-Type": "audio/wav"})
        file_part.set_content_disposition("form-data", name="file", filename="big.wav")
        model_part = form.append("whisper")
        model_part.set_content_disposition("form-data", name="model")

    tracemalloc.start()
    try:
        async with (
            asyncio.timeout(60),
            http.post(
                gateway.url("/v1/audio/transcriptions"),
                data=form,
                headers=auth(),
                timeout=aiohttp.ClientTimeout(total=60),
            ) as response,
        ):
            assert response.status == 200, await response.text()
            result = await response.json()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result == {"text": f"Emulator transcription of big.wav ({UPLOAD_SIZE} bytes)."}
    received = emulator.last_request
    assert (received.path, received.query) == (
        "/openai/deployments/whisper/audio/transcriptions",
        {"api-version": GA},
    )
    assert received.headers["api-key"] == KEY
    assert received.body_size > UPLOAD_SIZE
    upload = emulator.last_upload
    assert upload is not None
    assert upload.files["file"] == UploadedFile("big.wav", UPLOAD_SIZE, digest.hexdigest())
    assert [name for name, _ in upload.parts] == ["file", "model"]
    assert upload.fields == {"model": "whisper"}
    # Client, gateway and emulator share this process: all three together stay small.
    print(f"\n25 MB upload through the gateway, model last: peak {peak / MB:.2f} MiB")
    assert peak < 8 * MB, f"peak traced memory {peak / MB:.1f} MiB"
