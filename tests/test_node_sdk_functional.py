"""End to end with the official `openai` package for Node.js, run by the machine's `node`.

`tests/node/e2e.mjs` drives the SDK (pinned in tests/node/package.json, installed by
`npm ci --prefix tests/node`) against a gateway in front of the emulator and prints one JSON
object of results; this test checks each result and what the emulator received. A missing
`node` or SDK install fails the test with the command to fix it: nothing is skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from azproxy.emulator import EmulatorState, RecordedRequest, UploadedFile

from .support import KEY, Gateway, GatewayFactory

NODE_DIR = Path(__file__).parent / "node"
SCRIPT = NODE_DIR / "e2e.mjs"
INSTALL = "npm ci --prefix tests/node --no-audit --no-fund"
NODE_TIMEOUT = 60.0
REPLY = "The quick brown fox jumps over the lazy dog."
AZURE_API_VERSION = "2025-04-01-preview"
GA = "2024-10-21"  # the gateway's default api-version
JSON = dict[str, Any]
DEPLOYMENT = "prod-4o"  # what gpt-4o maps to

# Each test runs the script once; leave room for asyncio.timeout(NODE_TIMEOUT) to fire first.
pytestmark = pytest.mark.timeout(NODE_TIMEOUT + 30)


def node_executable() -> str:
    """The `node` to run, or a failure saying how to get it (never a skip)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "`node` is not on PATH: the Node SDK tests need Node.js 20 or later "
            "(e.g. `apt-get install nodejs npm`), then `" + INSTALL + "`.",
            pytrace=False,
        )
    if not (NODE_DIR / "node_modules" / "openai" / "package.json").is_file():
        pytest.fail(
            f"the openai Node SDK is not installed in {NODE_DIR}: run `{INSTALL}` "
            "(`make test` does).",
            pytrace=False,
        )
    return node


def node_env() -> dict[str, str]:
    """The environment without OpenAI/Azure settings the SDK would pick up on its own."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OPENAI_", "AZURE_", "AZPROXY_"))
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


async def run_script(gateway: Gateway) -> JSON:
    """Run e2e.mjs against `gateway`; its parsed JSON output."""
    node = node_executable()
    process = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        str(gateway.url("")).rstrip("/"),
        KEY,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=NODE_DIR,
        env={**node_env(), "AZPROXY_AZURE_API_VERSION": AZURE_API_VERSION},
    )
    try:
        async with asyncio.timeout(NODE_TIMEOUT):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"node {SCRIPT.name} did not finish within {NODE_TIMEOUT:.0f} s")
    output, errors = stdout.decode(errors="replace"), stderr.decode(errors="replace")
    assert process.returncode == 0, f"node exited with {process.returncode}:\n{errors}{output}"
    try:
        results = json.loads(output)
    except json.JSONDecodeError:
        pytest.fail(f"node printed no JSON object:\nstdout: {output}\nstderr: {errors}")
    assert isinstance(results, dict)
    failed = {name: result for name, result in results.items() if "error" in result}
    assert not failed, f"Node SDK calls failed: {failed}"
    return results


def received(emulator: EmulatorState, path: str) -> RecordedRequest:
    """The one request the emulator got on `path`."""
    [request] = [r for r in emulator.requests if r.path == path]
    return request


def body(request: RecordedRequest) -> JSON:
    parsed = orjson.loads(request.body)
    assert isinstance(parsed, dict)
    return parsed


@pytest.fixture
async def node_gateway(start_gateway: GatewayFactory, emulator: EmulatorState) -> Gateway:
    emulator.reply = REPLY
    # An alias, so each call shows the mapper at work (Azure-style paths included).
    return await start_gateway(AZURE_OPENAI_MODEL_MAPPER=f"gpt-4o={DEPLOYMENT}")


@pytest.fixture
async def results(node_gateway: Gateway) -> JSON:
    return await run_script(node_gateway)


async def test_node_sdk_through_the_gateway(results: JSON, emulator: EmulatorState) -> None:
    # Every call reached Azure in the script's order; models.list is answered by the gateway.
    assert [(r.method, r.path) for r in emulator.requests] == [
        ("POST", f"/openai/deployments/{DEPLOYMENT}/chat/completions"),
        ("POST", f"/openai/deployments/{DEPLOYMENT}/chat/completions"),
        ("POST", "/openai/deployments/text-embedding-ada-002/embeddings"),
        ("POST", "/openai/deployments/whisper/audio/transcriptions"),
        ("POST", "/openai/deployments/dall-e-3/images/generations"),
        ("POST", "/openai/v1/responses"),
        ("POST", f"/openai/deployments/{DEPLOYMENT}/chat/completions"),
    ]
    assert all(r.headers["api-key"] == KEY for r in emulator.requests)
    assert all("Authorization" not in r.headers for r in emulator.requests)
    openai_style, azure_style = emulator.requests[:-1], emulator.requests[-1]
    assert all(r.query == {"api-version": GA} for r in openai_style if "/deployments/" in r.path)
    assert azure_style.query == {"api-version": AZURE_API_VERSION}  # the client's version kept


async def test_node_chat(results: JSON, emulator: EmulatorState) -> None:
    assert results["chat"] == {
        "content": REPLY,
        "object": "chat.completion",
        "model": "gpt-4o",
        "finish_reason": "stop",
    }
    first = emulator.requests[0]
    assert body(first) == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


async def test_node_chat_stream(results: JSON, emulator: EmulatorState) -> None:
    stream = results["chat_stream"]
    assert "".join(stream["deltas"]) == REPLY
    assert len(stream["deltas"]) > 3  # word by word, not one blob
    # The normaliser: no choice-less Azure chunks, OpenAI's object and the asked-for model.
    assert stream["without_choices"] == 0
    assert stream["objects"] == ["chat.completion.chunk"]
    assert stream["models"] == ["gpt-4o"]
    assert body(emulator.requests[1])["stream"] is True
    assert emulator.completed_streams == 1


async def test_node_embeddings(results: JSON, emulator: EmulatorState) -> None:
    assert results["embeddings"] == {"indexes": [0, 1], "dimensions": [8, 8], "distinct": True}
    request = received(emulator, "/openai/deployments/text-embedding-ada-002/embeddings")
    assert body(request)["input"] == ["hello", "world"]


async def test_node_models_list(results: JSON) -> None:
    assert results["models"] == {"ids": ["gpt-3.5-turbo", "gpt-3.5-turbo-0301", "gpt-4o"]}


async def test_node_transcription_with_the_file_before_the_model(
    results: JSON, emulator: EmulatorState
) -> None:
    transcription = results["transcription"]
    size = transcription["size"]
    assert transcription["text"] == f"Emulator transcription of speech.wav ({size} bytes)."
    request = received(emulator, "/openai/deployments/whisper/audio/transcriptions")
    upload = request.upload
    assert upload is not None
    assert upload.files["file"] == UploadedFile("speech.wav", size, transcription["sha256"])
    assert upload.fields == {"model": "whisper"}
    # Exactly the case to prove: the model arrives after the file.
    assert [name for name, _ in upload.parts] == ["file", "model"]
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")


async def test_node_images_generate(results: JSON, emulator: EmulatorState) -> None:
    images = results["images"]
    assert images["count"] == 1
    assert images["url"].startswith("https://emulator.invalid/img/")
    assert images["revised_prompt"] == "Emulator rendering of: a cat"
    request = received(emulator, "/openai/deployments/dall-e-3/images/generations")
    assert body(request) == {"model": "dall-e-3", "prompt": "a cat"}


async def test_node_responses_create(results: JSON, emulator: EmulatorState) -> None:
    response = results["responses"]
    assert response["object"] == "response"
    assert response["status"] == "completed"
    assert response["output_text"] == REPLY
    assert response["id"] in emulator.responses
    request = received(emulator, "/openai/v1/responses")
    assert request.query == {}
    assert body(request) == {"model": DEPLOYMENT, "input": "Say hi"}


async def test_node_azure_openai_chat(results: JSON, emulator: EmulatorState) -> None:
    assert results["azure_chat"] == {
        "content": REPLY,
        "object": "chat.completion",
        "model": "gpt-4o",
    }
    request = emulator.requests[-1]
    assert request.path == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert request.query == {"api-version": AZURE_API_VERSION}
    assert body(request) == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
