"""The upstream client's name cache: one query per name in flight, answers kept for ttl."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from azproxy.dnscache import DnsCache

ANSWER = [
    (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", 443, 0, 0)),
    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 443)),
]


class FakeResolver:
    """Stands in for the loop's getaddrinfo; each query waits until `release`."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, int]] = []
        self.release = asyncio.Event()
        self.fail = False

    async def getaddrinfo(self, host: str, port: int, **_: Any) -> list[Any]:
        self.queries.append((host, port))
        await self.release.wait()
        if self.fail:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return ANSWER


@pytest.fixture
async def resolver(monkeypatch: pytest.MonkeyPatch) -> FakeResolver:
    fake = FakeResolver()
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake.getaddrinfo)
    return fake


async def test_lookups_in_flight_share_one_query(resolver: FakeResolver) -> None:
    cache = DnsCache()
    lookups = [asyncio.create_task(cache.resolve("res.openai.azure.com", 443)) for _ in range(5)]
    await asyncio.sleep(0)
    resolver.release.set()
    answers = await asyncio.gather(*lookups)
    assert resolver.queries == [("res.openai.azure.com", 443)]
    expected = [(socket.AF_INET6, "::1", 443), (socket.AF_INET, "10.0.0.7", 443)]
    assert all(answer == expected for answer in answers)


async def test_answers_are_kept_for_the_ttl(resolver: FakeResolver) -> None:
    resolver.release.set()
    kept, expired = DnsCache(ttl=60), DnsCache(ttl=0)
    for cache in (kept, expired):
        await cache.resolve("res.openai.azure.com", 443)
        await cache.resolve("res.openai.azure.com", 443)
    assert len(resolver.queries) == 1 + 2


async def test_ip_literals_need_no_query(resolver: FakeResolver) -> None:
    cache = DnsCache()
    assert await cache.resolve("127.0.0.1", 80) == [(socket.AF_INET, "127.0.0.1", 80)]
    assert await cache.resolve("::1", 80) == [(socket.AF_INET6, "::1", 80)]
    assert resolver.queries == []


async def test_a_failure_is_not_kept(resolver: FakeResolver) -> None:
    cache = DnsCache()
    resolver.fail = True
    resolver.release.set()
    with pytest.raises(OSError, match="Name or service not known"):
        await cache.resolve("nowhere.invalid", 443)
    resolver.fail = False
    assert await cache.resolve("nowhere.invalid", 443)
    assert len(resolver.queries) == 2


async def test_a_caller_that_gives_up_does_not_cancel_the_others(resolver: FakeResolver) -> None:
    cache = DnsCache()
    impatient = asyncio.create_task(cache.resolve("res.openai.azure.com", 443))
    patient = asyncio.create_task(cache.resolve("res.openai.azure.com", 443))
    await asyncio.sleep(0)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    resolver.release.set()
    assert len(await patient) == 2
    assert len(resolver.queries) == 1
