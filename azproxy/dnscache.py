"""Name resolution for the upstream client, remembered for a few seconds.

Every new upstream connection would otherwise cost a `getaddrinfo` (a thread and, usually, a
round trip to the resolver): a burst of new streams would send a burst of identical DNS
queries. Lookups of one name in flight at once share one query; answers are kept for `ttl`
seconds, as aiohttp's connector does by default (10 s).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

Address = tuple[int, str, int]  # (family, host address, port)


class DnsCache:
    """`resolve(host, port)`: the addresses to try, in the resolver's order."""

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self._answers: dict[tuple[str, int], tuple[float, list[Address]]] = {}
        self._pending: dict[tuple[str, int], asyncio.Future[list[Address]]] = {}

    async def resolve(self, host: str, port: int) -> list[Address]:
        literal = _ip_literal(host, port)
        if literal is not None:
            return [literal]
        loop = asyncio.get_running_loop()
        key = (host, port)
        cached = self._answers.get(key)
        if cached is not None and cached[0] > loop.time():
            return cached[1]
        pending = self._pending.get(key)
        if pending is None:
            pending = loop.create_task(self._lookup(host, port))
            # Retrieved here, so a failure nobody waits for any more is not reported as lost.
            pending.add_done_callback(lambda task: task.cancelled() or task.exception())
            self._pending[key] = pending
        # Shielded: one caller giving up (its client left) does not cancel the others' lookup.
        return await asyncio.shield(pending)

    async def _lookup(self, host: str, port: int) -> list[Address]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        finally:
            del self._pending[(host, port)]
        addresses: list[Address] = [
            (int(family), str(sockaddr[0]), port) for family, _, _, _, sockaddr in infos
        ]
        if not addresses:
            raise OSError(f"no address for {host}")
        self._answers[(host, port)] = (loop.time() + self.ttl, addresses)
        return addresses


def _ip_literal(host: str, port: int) -> Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return (family, host, port)
