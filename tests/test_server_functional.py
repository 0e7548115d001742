"""`python -m azproxy` as a user runs it: a real process, real port, signals."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def children_of(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


async def start(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("AZURE_OPENAI", "OPENAI"))
    }
    environment.update(env or {})
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "azproxy",
        *args,
        cwd=ROOT / "tests",  # no stray .env
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group: teardown can stop its workers too
    )


async def wait_ready(http: aiohttp.ClientSession, base: str) -> None:
    async with asyncio.timeout(20):
        while True:
            try:
                async with http.get(f"{base}/ready") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)  # polling a starting process, not racing it


@pytest.fixture
async def gateway_process() -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    port = free_port()
    process = await start("--address", f"127.0.0.1:{port}", "--workers", "2")
    yield process, f"http://127.0.0.1:{port}"
    # After a failed test the workers may still run, holding the output pipes open; the whole
    # group goes, so the wait below cannot hang.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    async with asyncio.timeout(20):
        await process.wait()


async def test_runs_in_front_of_the_emulator_with_workers_and_stops_on_sigterm(
    gateway_process: tuple[asyncio.subprocess.Process, str], http: aiohttp.ClientSession
) -> None:
    process, base = gateway_process
    await wait_ready(http, base)
    assert len(children_of(process.pid)) == 2
    body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": "Bearer sekrit-key-42"}
    async with http.post(f"{base}/v1/chat/completions", json=body, headers=headers) as resp:
        assert resp.status == 200
        stream = await resp.read()
    assert b"emulator" in stream
    assert stream.endswith(b"data: [DONE]\n\n")
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        _, stderr = await process.communicate()
    assert process.returncode == 0
    log = stderr.decode()
    assert "serving from the built-in Azure EMULATOR" in log
    assert "started 2 workers" in log
    assert "sekrit-key-42" not in log


@pytest.mark.parametrize(
    ("args", "setting"),
    [
        (["--address", "nowhere"], "AZURE_OPENAI_PROXY_ADDRESS"),
        (["--mode", "gcp"], "AZURE_OPENAI_PROXY_MODE"),
        (["--endpoint", "ftp://x"], "AZURE_OPENAI_ENDPOINT"),
        (["--mapper", "gpt-4"], "AZURE_OPENAI_MODEL_MAPPER"),
    ],
)
async def test_bad_configuration_fails_at_start_with_one_line(
    args: list[str], setting: str
) -> None:
    process = await start(*args)
    async with asyncio.timeout(20):
        _, stderr = await process.communicate()
    assert process.returncode == 1
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert setting in lines[0]


async def test_a_port_in_use_fails_at_start_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await start("--address", f"127.0.0.1:{port}")
        async with asyncio.timeout(20):
            _, stderr = await process.communicate()
    assert process.returncode == 1
    last = stderr.decode().strip().splitlines()[-1]
    assert last == f"azproxy: cannot listen on 127.0.0.1:{port}: address already in use"
    assert "Traceback" not in stderr.decode()


async def test_a_burst_of_sdk_streams_is_served_by_the_real_process(
    http: aiohttp.ClientSession,
) -> None:
    """50 streams opened at once by the official SDK, through `python -m azproxy`."""
    from openai import AsyncOpenAI

    port = free_port()
    process = await start("--address", f"127.0.0.1:{port}")
    try:
        await wait_ready(http, f"http://127.0.0.1:{port}")
        client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-burst")

        async def one_stream() -> str:
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            parts = [
                chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices
            ]
            return "".join(parts)

        async with asyncio.timeout(30):
            replies = await asyncio.gather(*(one_stream() for _ in range(50)))
        await client.close()
        assert len(replies) == 50
        assert all("emulator" in reply for reply in replies)
        assert len(set(replies)) == 1  # every stream got the whole canned reply
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            _, stderr = await process.communicate()
    assert process.returncode == 0
    access_lines = [line for line in stderr.decode().splitlines() if "azproxy.access" in line]
    chats = [line for line in access_lines if "POST /v1/chat/completions" in line]
    assert len(chats) == 50
    assert all(" status=200 " in line for line in chats)
