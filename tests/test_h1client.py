"""The lean HTTP/1.1 client, against a server scripted byte by byte on a real socket.

Each test plays the server's side by hand (what to send, when, and when to hang up), so the
framing the client sees is exactly the one written here; and it checks the exact bytes the
server received.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import trustme

from azproxy.h1client import (
    HIGH_WATER,
    ConnectError,
    H1Pool,
    H1Response,
    Origin,
    serialize_request,
    split_url,
)

# Bounds only the server side's waits, so a client that never sends fails cleanly.
SERVER_WAIT = 10.0

LOOPS = ("asyncio", "uvloop")  # see conftest.pytest_asyncio_loop_factories


# -- the scripted server -----------------------------------------------------------------------


@dataclass
class Request:
    """One request as the server received it: the head (through the blank line) and the body."""

    head: bytes
    body: bytes

    @property
    def raw(self) -> bytes:
        return self.head + self.body

    @property
    def request_line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode()

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, sep, value = line.decode().partition(":")
            if sep and key.lower() == name.lower():
                return value.strip()
        return None


class Conn:
    """The server's end of one accepted connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read_request(self) -> Request:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), SERVER_WAIT)
        request = Request(head, b"")
        length = int(request.header("Content-Length") or 0)
        request.body = await asyncio.wait_for(self.reader.readexactly(length), SERVER_WAIT)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def respond(self, data: bytes) -> Request:
        """Read one request, answer it with `data`, return what was received."""
        request = await self.read_request()
        await self.send(data)
        return request

    async def peer_hung_up(self) -> bool:
        """Wait for the client's end to go away (EOF or reset); False if more bytes came."""
        try:
            data = await asyncio.wait_for(self.reader.read(), SERVER_WAIT)
        except ConnectionResetError:
            return True
        return data == b""

    def close(self) -> None:
        self.writer.close()


class ScriptedServer:
    """Accepts on 127.0.0.1 and hands each connection to the test, in order."""

    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0
        self._queue: asyncio.Queue[Conn] = asyncio.Queue()
        self._conns: list[Conn] = []
        self._server: asyncio.Server | None = None

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> ScriptedServer:
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0, ssl=ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        conn = Conn(reader, writer)
        self._conns.append(conn)
        self._queue.put_nowait(conn)

    def url(self, path: str = "/", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def accept(self) -> Conn:
        return await asyncio.wait_for(self._queue.get(), SERVER_WAIT)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for conn in self._conns:
            conn.writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await conn.writer.wait_closed()
        await self._server.wait_closed()


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    scripted = await ScriptedServer().start()
    yield scripted
    await scripted.close()


PoolFactory = Callable[..., H1Pool]

# The requests `get` started, so that a failing test leaves none of them behind.
_tasks: set[asyncio.Task[H1Response]] = set()


@pytest.fixture
async def make_pool() -> AsyncIterator[PoolFactory]:
    pools: list[H1Pool] = []

    def make(limit: int = 10, connect_timeout: float = 5.0, **kwargs: Any) -> H1Pool:
        pools.append(H1Pool(limit, connect_timeout, **kwargs))
        return pools[-1]

    yield make
    for task in _tasks:
        task.cancel()
    await asyncio.gather(*_tasks, return_exceptions=True)
    _tasks.clear()
    for h1 in pools:
        await h1.close()


@pytest.fixture
def pool(make_pool: PoolFactory) -> H1Pool:
    return make_pool()


def answer(body: bytes = b"ok", *headers: str) -> bytes:
    """A Content-Length framed 200 with `body` and extra header lines."""
    head = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def get(pool: H1Pool, url: str) -> asyncio.Task[H1Response]:
    """Start a GET; the test then plays the server and awaits the task for the answer."""
    task = asyncio.create_task(pool.request("GET", url, {}, b""))
    _tasks.add(task)
    return task


async def get_ok(
    pool: H1Pool, server: ScriptedServer, conn: Conn | None = None, url: str | None = None
) -> Conn:
    """One GET answered "ok" on `conn` (or on the next accepted connection), read and released."""
    pending = get(pool, url or server.url("/"))
    conn = conn or await server.accept()
    await conn.respond(answer())
    response = await pending
    assert await response.read() == b"ok"
    response.release()
    return conn


async def answered(
    pool: H1Pool, server: ScriptedServer, wire: bytes, url: str
) -> tuple[Conn, H1Response]:
    """A GET of `url` answered with `wire` on the next accepted connection: the server's end,
    and the response with its head read and its body not yet."""
    pending = get(pool, url)
    conn = await server.accept()
    await conn.respond(wire)
    return conn, await pending


def refused_port() -> int:
    """A port nobody listens on: bound, never listening, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def until_waiting(task: asyncio.Task[H1Response]) -> None:
    """Let `task` run until it blocks (on the pool's queue: it needs no I/O to get there)."""
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()


# -- split_url / serialize_request -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin", "target"),
    [
        ("http://example.com", Origin("http", "example.com", 80), "/"),
        ("https://example.com/", Origin("https", "example.com", 443), "/"),
        ("HTTPS://Example.COM:8443/a/b", Origin("https", "example.com", 8443), "/a/b"),
        ("http://[::1]:8080/x", Origin("http", "::1", 8080), "/x"),
        ("https://[::1]/x", Origin("https", "::1", 443), "/x"),
        (
            "http://h/p?api-version=1&q=a%20b#frag",
            Origin("http", "h", 80),
            "/p?api-version=1&q=a%20b",
        ),
    ],
)
def test_split_url(url: str, origin: Origin, target: str) -> None:
    assert split_url(url) == (origin, target)


@pytest.mark.parametrize(
    "url",
    [
        "http://user:secret@example.com/",
        "http://user@example.com/",
        "ftp://example.com/",
        "ws://example.com/",
        "example.com/path",
        "http:///path",
    ],
)
def test_split_url_refuses(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        split_url(url)


def test_get_request_bytes_omit_default_port_and_content_length() -> None:
    origin, target = split_url("http://example.com/v1/models?x=1")
    assert serialize_request("GET", target, origin, {"X-A": "1"}, b"") == (
        b"GET /v1/models?x=1 HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nAccept: */*\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://example.com/", "example.com"),
        ("https://example.com:80/", "example.com:80"),
        ("http://example.com:443/", "example.com:443"),
        ("http://[::1]:8080/x", "[::1]:8080"),
        ("http://[::1]/x", "[::1]"),
    ],
)
def test_host_header_has_port_only_when_not_default(url: str, host: str) -> None:
    origin, target = split_url(url)
    payload = serialize_request("GET", target, origin, {}, b"")
    assert payload.split(b"\r\n")[1] == f"Host: {host}".encode()


def test_caller_accept_is_kept_and_not_duplicated() -> None:
    origin, target = split_url("http://h/")
    payload = serialize_request("GET", target, origin, {"accept": "text/event-stream"}, b"")
    assert b"accept: text/event-stream\r\n" in payload
    assert payload.lower().count(b"accept:") == 1


def test_post_with_empty_body_has_content_length_zero() -> None:
    origin, target = split_url("http://h/p")
    payload = serialize_request("POST", target, origin, {}, b"")
    assert payload == b"POST /p HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nContent-Length: 0\r\n\r\n"


def test_body_gets_length_and_default_content_type() -> None:
    origin, target = split_url("http://h/p")
    payload = serialize_request("PUT", target, origin, {}, b"abc")
    assert payload.endswith(
        b"Content-Type: application/octet-stream\r\nContent-Length: 3\r\n\r\nabc"
    )


def test_caller_framing_headers_are_replaced() -> None:
    origin, target = split_url("http://h:81/p")
    headers = {
        "Host": "evil",
        "Content-Length": "99",
        "Transfer-Encoding": "chunked",
        "Connection": "close",
        "Content-Type": "application/json",
    }
    payload = serialize_request("POST", target, origin, headers, b"{}")
    assert payload == (
        b"POST /p HTTP/1.1\r\nHost: h:81\r\nContent-Type: application/json\r\n"
        b"Accept: */*\r\nContent-Length: 2\r\n\r\n{}"
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "1\r\nX-Injected: 2"},
        {"X-A": "1\nX-Injected: 2"},
        {"X-A": "1\r"},
        {"X-A\r\nX-B": "1"},
    ],
)
def test_cr_or_lf_in_headers_is_refused(headers: dict[str, str]) -> None:
    origin, target = split_url("http://h/")
    with pytest.raises(ValueError, match="CR or LF"):
        serialize_request("GET", target, origin, headers, b"")


# -- framing of the answer ---------------------------------------------------------------------


async def test_content_length_body_and_exact_request(pool: H1Pool, server: ScriptedServer) -> None:
    pending = asyncio.create_task(
        pool.request(
            "POST",
            server.url("/v1/chat?api-version=2024"),
            {"Content-Type": "application/json", "api-key": "k"},
            b'{"a":1}',
        )
    )
    conn = await server.accept()
    request = await conn.respond(
        answer(b'{"ok":true}', "Content-Type: Application/JSON; charset=UTF-8", "X-Id: 7")
    )
    response = await pending

    assert (
        request.raw
        == (
            f"POST /v1/chat?api-version=2024 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Content-Type: application/json\r\napi-key: k\r\nAccept: */*\r\n"
            'Content-Length: 7\r\n\r\n{"a":1}'
        ).encode()
    )
    assert response.status == 200
    assert response.headers["x-id"] == "7"
    assert response.content_type == "application/json"
    assert response.charset == "UTF-8"
    assert response.content_length == 11
    assert await response.read() == b'{"ok":true}'
    response.release()


async def test_chunked_body_split_across_writes(pool: H1Pool, server: ScriptedServer) -> None:
    pending = get(pool, server.url("/c"))
    conn = await server.accept()
    request = await conn.read_request()
    wire = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    for start in range(0, len(wire), 7):  # the head and every chunk cut mid-way
        await conn.send(wire[start : start + 7])
    response = await pending

    assert request.request_line == "GET /c HTTP/1.1"
    assert request.header("Content-Length") is None
    assert response.content_length is None
    assert await response.read() == b"hello, world"


async def test_chunks_reach_readany_one_by_one(pool: H1Pool, server: ScriptedServer) -> None:
    conn, response = await answered(
        pool,
        server,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        server.url("/stream"),
    )

    await conn.send(b"3\r\none\r\n")
    assert await response.content.readany() == b"one"
    await conn.send(b"3\r\ntwo\r\n")
    assert await response.content.readany() == b"two"
    await conn.send(b"0\r\n\r\n")
    assert await response.content.readany() == b""
    response.release()

    await get_ok(pool, server, conn)  # the chunked answer ended cleanly: same connection
    assert server.accepted == 1


async def test_body_delimited_by_connection_close(pool: H1Pool, server: ScriptedServer) -> None:
    conn, response = await answered(
        pool,
        server,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst ",
        server.url("/eof"),
    )
    assert await response.content.readany() == b"first "
    await conn.send(b"and last")
    conn.close()

    assert await response.read() == b"and last"
    assert response.content_length is None
    response.release()
    assert pool.open_connections == 0


async def test_204_has_no_body_and_keeps_the_connection(
    pool: H1Pool, server: ScriptedServer
) -> None:
    pending = asyncio.create_task(pool.request("DELETE", server.url("/f/1"), {}, b""))
    conn = await server.accept()
    request = await conn.respond(b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")
    response = await pending

    assert request.request_line == "DELETE /f/1 HTTP/1.1"
    assert response.status == 204
    assert await response.read() == b""
    response.release()
    await get_ok(pool, server, conn)
    assert server.accepted == 1


async def test_interim_100_continue_is_skipped(pool: H1Pool, server: ScriptedServer) -> None:
    _conn, response = await answered(
        pool,
        server,
        b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n" + answer(b"real"),
        server.url("/"),
    )

    assert response.status == 200
    assert "X-Interim" not in response.headers
    assert await response.read() == b"real"


# -- keep-alive --------------------------------------------------------------------------------


async def test_released_connection_is_reused(pool: H1Pool, server: ScriptedServer) -> None:
    conn = await get_ok(pool, server)
    assert pool.open_connections == 1
    await get_ok(pool, server, conn)
    assert server.accepted == 1
    assert pool.open_connections == 1


async def test_connection_close_from_server_is_not_reused(
    pool: H1Pool, server: ScriptedServer
) -> None:
    first, response = await answered(
        pool, server, answer(b"bye", "Connection: close"), server.url("/")
    )
    assert await response.read() == b"bye"
    response.release()
    assert await first.peer_hung_up()

    await get_ok(pool, server)
    assert server.accepted == 2


async def test_closed_unread_answer_is_not_reused(pool: H1Pool, server: ScriptedServer) -> None:
    pending = get(pool, server.url("/"))
    first = await server.accept()
    await first.respond(answer(b"0123456789")[:-5])  # half the body so far
    response = await pending
    assert await response.content.readany() == b"01234"
    response.close()
    assert await first.peer_hung_up()
    assert pool.open_connections == 0

    await get_ok(pool, server)
    assert server.accepted == 2


async def test_released_unfinished_answer_is_not_reused(
    pool: H1Pool, server: ScriptedServer
) -> None:
    first, response = await answered(
        pool,
        server,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n",
        server.url("/"),
    )
    assert await response.content.readany() == b"a"
    response.release()  # the chunked body has not ended: its framing is unknown to the pool
    assert await first.peer_hung_up()

    await get_ok(pool, server)
    assert server.accepted == 2


async def test_idle_connection_closed_by_server_is_replaced(
    pool: H1Pool, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    forgotten = asyncio.Event()
    forget = pool.forget

    def spy(connection: Any) -> None:
        forget(connection)
        forgotten.set()

    monkeypatch.setattr(pool, "forget", spy)
    first = await get_ok(pool, server)
    first.close()  # the server's keep-alive ran out
    await asyncio.wait_for(forgotten.wait(), SERVER_WAIT)  # and the pool saw it go
    assert pool.open_connections == 0

    await get_ok(pool, server)
    assert server.accepted == 2


async def test_reused_connection_closed_before_answer_is_retried_once_if_idempotent(
    pool: H1Pool, server: ScriptedServer
) -> None:
    first = await get_ok(pool, server)
    pending = asyncio.create_task(pool.request("PUT", server.url("/again"), {}, b"body"))
    _tasks.add(pending)
    lost = await first.read_request()  # the request arrives, but the server hangs up on it
    first.close()

    second = await server.accept()
    resent = await second.respond(answer(b"done"))
    response = await pending
    assert await response.read() == b"done"
    assert resent.raw == lost.raw
    assert resent.body == b"body"
    assert server.accepted == 2


async def test_reused_connection_closed_mid_answer_is_not_sent_again(
    pool: H1Pool, server: ScriptedServer
) -> None:
    # Part of an answer came: the upstream ran the request, so even a GET is not repeated.
    first = await get_ok(pool, server)
    pending = get(pool, server.url("/again"))
    await first.respond(b"HTTP/1.1 200 OK\r\nContent-Le")
    first.close()

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await asyncio.wait_for(pending, SERVER_WAIT)
    assert server.accepted == 1


async def test_post_on_a_reused_connection_closed_before_answer_is_not_sent_again(
    pool: H1Pool, server: ScriptedServer
) -> None:
    # The server may have run it (a chat completion, billed) before hanging up, as aiohttp
    # assumes too: the caller gets the disconnect, the upstream sees the POST once.
    first = await get_ok(pool, server)
    pending = asyncio.create_task(pool.request("POST", server.url("/chat"), {}, b"body"))
    _tasks.add(pending)
    await first.read_request()
    first.close()

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await asyncio.wait_for(pending, SERVER_WAIT)
    assert server.accepted == 1
    assert pool.open_connections == 0


async def test_bytes_after_a_complete_answer_do_not_change_it(
    pool: H1Pool, server: ScriptedServer
) -> None:
    pending = get(pool, server.url("/"))
    conn = await server.accept()
    extra = b"HTTP/1.1 500 Oops\r\nX-B: 1\r\nContent-Length: 3\r\n\r\nbye"
    await conn.respond(answer(b"hi", "X-A: 1") + extra)
    response = await pending

    assert response.status == 200
    assert "X-B" not in response.headers
    assert await response.read() == b"hi"
    response.release()
    assert await conn.peer_hung_up()  # never reused: its framing cannot be trusted
    assert pool.open_connections == 0


async def test_junk_after_a_complete_answer_leaves_the_answer_whole(
    pool: H1Pool, server: ScriptedServer
) -> None:
    _conn, response = await answered(
        pool, server, answer(b"hi") + b"\x00garbage\r\n\r\n", server.url("/")
    )
    assert await response.read() == b"hi"
    response.release()
    assert pool.open_connections == 0


async def test_capitalised_chunked_body_cut_short_is_an_error(
    pool: H1Pool, server: ScriptedServer
) -> None:
    conn, response = await answered(
        pool,
        server,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nhi\r\n",
        server.url("/"),
    )
    assert await response.content.readany() == b"hi"
    conn.close()
    with pytest.raises(aiohttp.ClientError):
        await response.content.readany()


async def test_a_url_that_cannot_be_sent_is_a_client_error_that_quotes_nothing(
    pool: H1Pool,
) -> None:
    with pytest.raises(aiohttp.ClientError) as info:
        await pool.request("GET", "https://h:443?api-key=SECRET", {}, b"")
    assert "SECRET" not in str(info.value)
    with pytest.raises(aiohttp.ClientError) as info:
        await pool.request("GET", "https://h/", {"x": "a\r\nInjected: SECRET"}, b"")
    assert "SECRET" not in str(info.value)


async def test_fresh_connection_closed_before_answer_raises(
    pool: H1Pool, server: ScriptedServer
) -> None:
    pending = get(pool, server.url("/"))
    conn = await server.accept()
    await conn.read_request()
    conn.close()

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await pending
    assert server.accepted == 1  # raised, not sent again
    assert pool.open_connections == 0


# -- the pool's limit --------------------------------------------------------------------------


async def test_limit_queues_a_request_until_release(
    make_pool: PoolFactory, server: ScriptedServer
) -> None:
    pool = make_pool(limit=1)
    conn, response = await answered(pool, server, answer(b"one"), server.url("/1"))

    second = get(pool, server.url("/2"))
    await until_waiting(second)
    assert await response.read() == b"one"
    response.release()

    request = await conn.respond(answer(b"two"))  # on the same connection
    assert request.request_line == "GET /2 HTTP/1.1"
    assert await (await second).read() == b"two"
    assert server.accepted == 1


async def test_cancelled_waiter_leaves_the_pool_working(
    make_pool: PoolFactory, server: ScriptedServer
) -> None:
    pool = make_pool(limit=1)
    conn, response = await answered(pool, server, answer(), server.url("/1"))
    waiter = get(pool, server.url("/never"))
    await until_waiting(waiter)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert await response.read() == b"ok"
    response.release()
    await get_ok(pool, server, conn)
    assert server.accepted == 1
    assert pool.open_connections == 1


async def test_waiter_cancelled_as_it_is_woken_passes_the_turn_on(
    make_pool: PoolFactory, server: ScriptedServer
) -> None:
    pool = make_pool(limit=1)
    conn, response = await answered(pool, server, answer(), server.url("/1"))
    woken = get(pool, server.url("/woken"))
    await until_waiting(woken)
    next_in_line = get(pool, server.url("/next"))
    await until_waiting(next_in_line)

    assert await response.read() == b"ok"
    response.release()  # wakes `woken`...
    woken.cancel()  # ...which is cancelled before it runs (its client went away)
    with pytest.raises(asyncio.CancelledError):
        await woken

    # The idle connection is free: the next waiter must get it.
    request = await conn.respond(answer(b"next"))
    assert request.request_line == "GET /next HTTP/1.1"
    assert await (await next_in_line).read() == b"next"


# -- cancellation and connection failures ------------------------------------------------------


async def test_cancelled_request_aborts_its_connection(
    pool: H1Pool, server: ScriptedServer
) -> None:
    pending = get(pool, server.url("/slow"))
    conn = await server.accept()
    await conn.read_request()  # and never answer
    assert pool.open_connections == 1
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending

    assert await conn.peer_hung_up()
    assert pool.open_connections == 0


async def test_connect_refused_raises_connect_error(pool: H1Pool) -> None:
    port = refused_port()

    with pytest.raises(ConnectError) as info:
        await pool.request("GET", f"http://127.0.0.1:{port}/", {}, b"")
    assert isinstance(info.value, aiohttp.ClientConnectionError)
    assert isinstance(info.value.os_error, ConnectionRefusedError)
    assert info.value.os_error.strerror
    assert pool.open_connections == 0


async def test_a_host_name_is_resolved_once_and_its_next_address_tried(
    pool: H1Pool, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = refused_port()
    lookups: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[tuple[int, str, int]]:
        lookups.append((host, port))
        # The first address refuses: the client goes on to the next, as asyncio's would.
        return [(socket.AF_INET, "127.0.0.1", refused), (socket.AF_INET, "127.0.0.1", server.port)]

    monkeypatch.setattr(pool._dns, "resolve", resolve)
    pending = get(pool, "http://azure.example:1234/x")
    conn = await server.accept()
    request = await conn.respond(answer())
    response = await pending
    assert await response.read() == b"ok"
    assert request.header("Host") == "azure.example:1234"
    assert lookups == [("azure.example", 1234)]


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full: Linux drops the next SYN, so connecting hangs."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler.connect(("127.0.0.1", port))  # takes the only place in the queue
        yield port


async def test_connect_timeout_raises_timeout_error(make_pool: PoolFactory) -> None:
    pool = make_pool(connect_timeout=0.2)
    loop = asyncio.get_running_loop()
    with full_backlog() as port:
        started = loop.time()
        with pytest.raises(TimeoutError):
            await pool.request("GET", f"http://127.0.0.1:{port}/", {}, b"")
        assert loop.time() - started < 5
    assert pool.open_connections == 0


@pytest.mark.parametrize(
    ("head", "sent"),
    [
        (b"Content-Length: 10", b"abcd"),
        (b"Transfer-Encoding: chunked", b"a\r\nabcd"),
    ],
)
async def test_disconnect_mid_body_raises_client_error(
    pool: H1Pool, server: ScriptedServer, head: bytes, sent: bytes
) -> None:
    conn, response = await answered(
        pool, server, b"HTTP/1.1 200 OK\r\n" + head + b"\r\n\r\n" + sent, server.url("/")
    )
    assert await response.content.readany() == b"abcd"
    conn.close()

    with pytest.raises(aiohttp.ClientError) as info:
        await response.content.readany()
    assert isinstance(
        info.value,
        aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError | aiohttp.ClientOSError,
    )
    with pytest.raises(aiohttp.ClientError):
        await response.content.readany()  # the failure sticks
    response.release()
    response.close()
    assert pool.open_connections == 0
    await get_ok(pool, server)


async def test_close_wakes_a_reader_waiting_for_the_body(
    pool: H1Pool, server: ScriptedServer
) -> None:
    # The relay's idle watchdog closes a silent upstream while the pump waits in readany.
    conn, response = await answered(
        pool,
        server,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
        server.url("/"),
    )
    assert await response.content.readany() == b"ab"
    reader = asyncio.create_task(response.content.readany())
    await asyncio.sleep(0)
    response.close()

    with pytest.raises(aiohttp.ClientError):
        await asyncio.wait_for(reader, SERVER_WAIT)
    assert await conn.peer_hung_up()
    assert pool.open_connections == 0


# -- content encoding --------------------------------------------------------------------------

PAYLOAD = b'{"text": "' + b"squeeze me " * 500 + b'"}'


@pytest.mark.parametrize("decode", [True, False])
async def test_gzip_body(pool: H1Pool, server: ScriptedServer, decode: bool) -> None:
    encoded = gzip.compress(PAYLOAD)
    pending = asyncio.create_task(pool.request("GET", server.url("/"), {}, b"", decode=decode))
    conn = await server.accept()
    await conn.respond(answer(encoded, "Content-Encoding: gzip"))
    response = await pending

    if decode:
        assert response.content_length is None
        assert await response.read() == PAYLOAD
    else:
        assert response.content_length == len(encoded)
        assert await response.read() == encoded
    response.release()
    await get_ok(pool, server, conn)


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(zlib.compress(PAYLOAD), id="zlib-wrapped"),
        pytest.param(zlib.compress(PAYLOAD, wbits=-15), id="raw"),
    ],
)
async def test_deflate_body_is_decoded(
    pool: H1Pool, server: ScriptedServer, encoded: bytes
) -> None:
    _conn, response = await answered(
        pool, server, answer(encoded, "Content-Encoding: deflate"), server.url("/")
    )

    assert await response.read() == PAYLOAD


async def test_unknown_encoding_is_refused_when_decoding(
    pool: H1Pool, server: ScriptedServer
) -> None:
    pending = get(pool, server.url("/"))
    conn = await server.accept()
    await conn.respond(answer(b"xx", "Content-Encoding: br"))

    with pytest.raises(aiohttp.ClientPayloadError, match="br"):
        await pending
    assert pool.open_connections == 0


# -- flow control ------------------------------------------------------------------------------


async def test_large_body_to_a_slow_reader_arrives_whole(
    pool: H1Pool, server: ScriptedServer
) -> None:
    body = bytes(range(256)) * (4 * 1024 * 1024 // 256)
    pending = get(pool, server.url("/big"))
    conn = await server.accept()
    await conn.read_request()
    writing = asyncio.create_task(conn.send(answer(body)))
    response = await pending

    received = bytearray()
    sizes = []
    while chunk := await response.content.readany():
        received += chunk
        sizes.append(len(chunk))
        await asyncio.sleep(0.001)  # a slow client: the server keeps writing meanwhile
    await writing

    assert received == body
    # Reading pauses past HIGH_WATER, so at most one more socket read (256 KiB) piles up.
    assert max(sizes) <= HIGH_WATER + 256 * 1024
    response.release()
    await get_ok(pool, server, conn)


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_server(ca: trustme.CA) -> AsyncIterator[ScriptedServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    scripted = await ScriptedServer().start(context)
    yield scripted
    await scripted.close()


async def test_https_with_trusted_ca(
    ca: trustme.CA, tls_server: ScriptedServer, make_pool: PoolFactory
) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    pool = make_pool(ssl_context=context)
    pending = get(pool, tls_server.url("/secure", host="localhost", scheme="https"))
    conn = await tls_server.accept()
    request = await conn.respond(answer(b"encrypted"))
    response = await pending

    assert request.request_line == "GET /secure HTTP/1.1"
    assert request.header("Host") == f"localhost:{tls_server.port}"
    assert await response.read() == b"encrypted"
    response.release()
    await get_ok(pool, tls_server, conn, url=tls_server.url(host="localhost", scheme="https"))
    assert tls_server.accepted == 1


async def test_https_with_untrusted_certificate_fails(
    tls_server: ScriptedServer, make_pool: PoolFactory
) -> None:
    pool = make_pool(ssl_context=ssl.create_default_context())
    with pytest.raises(ConnectError) as info:
        await pool.request("GET", tls_server.url("/", host="localhost", scheme="https"), {}, b"")
    assert isinstance(info.value.os_error, ssl.SSLCertVerificationError)
    assert "certificate verify failed" in str(info.value.os_error)
    assert tls_server.accepted == 0
    assert pool.open_connections == 0


# -- closing the pool --------------------------------------------------------------------------


async def test_close_aborts_idle_connections_and_refuses_requests(
    pool: H1Pool, server: ScriptedServer
) -> None:
    conn = await get_ok(pool, server)
    assert pool.open_connections == 1

    await pool.close()
    assert await conn.peer_hung_up()
    assert pool.open_connections == 0
    with pytest.raises(aiohttp.ClientConnectionError):
        await pool.request("GET", server.url("/"), {}, b"")
    assert server.accepted == 1


async def test_close_fails_every_waiting_request(
    make_pool: PoolFactory, server: ScriptedServer
) -> None:
    pool = make_pool(limit=1)
    first = get(pool, server.url("/1"))
    conn = await server.accept()
    await conn.read_request()
    waiters = [get(pool, server.url(f"/w{n}")) for n in range(2)]
    for waiter in waiters:
        await until_waiting(waiter)

    await pool.close()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await first
    for waiter in waiters:
        with pytest.raises(aiohttp.ClientConnectionError):
            await asyncio.wait_for(waiter, SERVER_WAIT)
