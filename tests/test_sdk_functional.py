"""End to end with the official `openai` package, the client most users put in front of us."""

from __future__ import annotations

import asyncio

import openai
import pytest

from azproxy.emulator import EmulatorState, Fault

from .support import Gateway, GatewayFactory

REPLY = "The quick brown fox jumps over the lazy dog."
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def client_for(gateway: Gateway, path: str = "/v1") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=str(gateway.url(path)), api_key="k", max_retries=0)


async def test_chat(gateway: Gateway, emulator: EmulatorState) -> None:
    async with client_for(gateway) as client:
        completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    content = completion.choices[0].message.content
    assert content is not None
    assert "emulator" in content
    assert completion.object == "chat.completion"
    assert completion.usage is not None
    assert emulator.last_request.path == "/openai/deployments/gpt-4o/chat/completions"
    assert emulator.last_request.headers["api-key"] == "k"


async def test_chat_stream(gateway: Gateway, emulator: EmulatorState) -> None:
    emulator.reply = REPLY
    async with client_for(gateway) as client, asyncio.timeout(10):
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True
        )
        pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    assert "".join(pieces) == REPLY
    assert len(pieces) > 3  # word by word, not one blob
    assert emulator.completed_streams == 1


async def test_chat_stream_with_usage(gateway: Gateway, emulator: EmulatorState) -> None:
    emulator.reply = REPLY
    async with client_for(gateway) as client, asyncio.timeout(10):
        stream = await client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == len(REPLY.split())
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(chunk.usage is None for chunk in chunks[:-1])


async def test_embeddings(gateway: Gateway, emulator: EmulatorState) -> None:
    async with client_for(gateway) as client:
        result = await client.embeddings.create(
            model="text-embedding-ada-002", input=["hello", "world"]
        )
    assert [item.index for item in result.data] == [0, 1]
    assert all(len(item.embedding) == 8 for item in result.data)
    assert result.data[0].embedding != result.data[1].embedding
    assert emulator.last_request.path == "/openai/deployments/text-embedding-ada-002/embeddings"


async def test_models_list(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(AZURE_OPENAI_MODEL_MAPPER="gpt-4o=prod-4o")
    async with client_for(gateway) as client:
        ids = [model.id async for model in client.models.list()]
        model = await client.models.retrieve("gpt-4o")
    assert ids == ["gpt-3.5-turbo", "gpt-3.5-turbo-0301", "gpt-4o"]
    assert model.id == "gpt-4o"


async def test_deployment_not_found_raises_not_found(
    gateway: Gateway, emulator: EmulatorState
) -> None:
    emulator.deployments = frozenset({"other"})
    async with client_for(gateway) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert caught.value.status_code == 404
    assert caught.value.code == "DeploymentNotFound"
    assert "AZURE_OPENAI_MODEL_MAPPER" in caught.value.message


async def test_upstream_401_raises_authentication_error(
    gateway: Gateway, emulator: EmulatorState
) -> None:
    emulator.keys = frozenset({"right"})
    async with client_for(gateway) as client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


async def test_mid_stream_reset_raises_api_error(gateway: Gateway, emulator: EmulatorState) -> None:
    emulator.reply = REPLY
    emulator.add_fault(Fault(kind="reset", after_chunks=3))
    received: list[str] = []

    async def consume(stream: openai.AsyncStream[openai.types.chat.ChatCompletionChunk]) -> None:
        async for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")

    async with client_for(gateway) as client, asyncio.timeout(10):
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True
        )
        with pytest.raises(openai.APIError) as caught:
            await consume(stream)
    assert not isinstance(caught.value, openai.APIStatusError)  # the status was already 200
    assert REPLY.startswith("".join(received))
    assert "".join(received) != REPLY


async def test_sync_client_in_a_thread(gateway: Gateway, emulator: EmulatorState) -> None:
    emulator.reply = REPLY

    def call() -> tuple[str | None, str]:
        with openai.OpenAI(
            base_url=str(gateway.url("/v1")), api_key="k", max_retries=0, timeout=10
        ) as client:
            plain = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
            streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        return plain.choices[0].message.content, streamed

    async with asyncio.timeout(20):
        plain, streamed = await asyncio.to_thread(call)
    assert plain == REPLY
    assert streamed == REPLY


async def test_base_url_without_v1(gateway: Gateway, emulator: EmulatorState) -> None:
    async with client_for(gateway, "") as client:
        completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        embedding = await client.embeddings.create(model="ada", input="x")
    assert "emulator" in (completion.choices[0].message.content or "")
    assert len(embedding.data[0].embedding) == 8
    assert emulator.requests[0].path == "/openai/deployments/gpt-4o/chat/completions"
