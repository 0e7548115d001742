"""A lean keep-alive HTTP/1.1 client for calls whose body is already in memory.

aiohttp's `ClientSession` costs about 150 µs of CPU per call on the benchmark machine (request
and URL objects, tracing, timers, its Python-level writer); this client sends the request in
one `write`, parses the answer with llhttp (through `httptools`, as uvicorn does) and hands
body bytes straight to the relay. It does only what the gateway's hot path needs:

- `http` and `https` origins, a keep-alive pool bounded in total (`limit`), idle connections
  closed after `keepalive` seconds;
- bodies framed by Content-Length, chunked encoding or the end of the connection; gzip and
  deflate decoded when asked (we send `Accept-Encoding: identity`, so Azure does not compress);
- flow control: reading pauses while a slow client has not taken what arrived;
- a request cancelled at any point aborts its connection, which never goes back to the pool.

Failures are `aiohttp.ClientError`s, so the relay handles both clients alike. Streamed
request bodies (uploads) still go through aiohttp.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import aiohttp
import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from .dnscache import DnsCache

# Reading pauses above this many undelivered body bytes, and resumes once they are taken.
HIGH_WATER = 256 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


class ConnectError(aiohttp.ClientConnectionError):
    """The TCP or TLS connection could not be made; `os_error` says why."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(os_error)
        self.os_error = os_error


class UnsendableRequest(aiohttp.ClientError):
    """The URL or headers cannot be sent as HTTP/1.1; the message quotes neither."""


class _Stale(Exception):
    """A reused connection closed before any byte of the answer: safe to send again."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@lru_cache(maxsize=1024)  # the same few deployment URLs, call after call
def split_url(url: str) -> tuple[Origin, str]:
    """`(origin, request-target)` of an absolute http(s) URL; ValueError for anything else."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {scheme}")
    authority, slash, path = rest.partition("/")
    target, _, _ = ("/" + path if slash else "/").partition("#")
    if authority.startswith("["):
        host, _, port_text = authority[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = authority.partition(":")
    if "@" in authority or not host:
        raise ValueError("the URL's authority is not a plain host[:port]")
    port = int(port_text) if port_text else (443 if scheme == "https" else 80)
    return Origin(scheme, host.lower(), port), target


def serialize_request(
    method: str, target: str, origin: Origin, headers: Mapping[str, str], body: bytes
) -> bytes:
    """The whole request as one buffer; header names/values with CR or LF are refused."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {origin.host_header}"]
    seen = set()
    for name, value in headers.items():
        lname = name.lower()
        if lname in ("host", "content-length", "transfer-encoding", "connection"):
            continue
        seen.add(lname)
        lines.append(f"{name}: {value}")
    if "accept" not in seen:
        lines.append("Accept: */*")
    if body and "content-type" not in seen:
        lines.append("Content-Type: application/octet-stream")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    joined = "".join(lines)
    if "\n" in joined or "\r" in joined:
        raise ValueError("a header name or value contains CR or LF")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


class H1Response:
    """The answer to one request: status and headers now, the body as it arrives.

    Quacks like the parts of `aiohttp.ClientResponse` the relay uses (`content.readany()`,
    `content_type`, `charset`, `content_length`, `release()`, `close()`).
    """

    def __init__(self, connection: _Connection, decode: bool) -> None:
        self._connection = connection
        self._decode = decode
        self._loop = connection.loop
        self.status = 0
        self.headers: CIMultiDictProxy[str] = _NO_HEADERS
        self._raw: list[tuple[bytes, bytes]] = []
        self._head: asyncio.Future[None] = self._loop.create_future()
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._complete = False
        self._until_eof = False
        self._keep_alive = False
        self._inflater: zlib._Decompress | None = None
        self._raw_deflate_possible = False
        self._received_any = False

    # -- what the relay reads --------------------------------------------------------------

    @property
    def content(self) -> H1Response:
        return self

    @property
    def content_type(self) -> str:
        value = self.headers.get("Content-Type")
        if value is None:
            return "application/octet-stream"
        return value.partition(";")[0].strip().lower()

    @property
    def charset(self) -> str | None:
        for param in self.headers.get("Content-Type", "").split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                return value.strip().strip('"') or None
        return None

    @property
    def content_length(self) -> int | None:
        if self._inflater is not None:
            return None  # the header counts the encoded bytes
        value = self.headers.get("Content-Length")
        return int(value) if value is not None and value.isdigit() else None

    async def readany(self) -> bytes:
        """What has arrived since the last call, waiting for something; b"" at the end."""
        while not self._chunks:
            if self._complete:
                return b""
            if self._error is not None:
                raise self._error
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        if self._buffered > HIGH_WATER:
            self._connection.resume_reading()
        self._buffered = 0
        return data

    def is_eof(self) -> bool:
        """Whether the whole body has arrived (as `aiohttp.StreamReader.is_eof`)."""
        return self._complete

    async def read(self) -> bytes:
        parts = []
        while chunk := await self.readany():
            parts.append(chunk)
        return b"".join(parts)

    def release(self) -> None:
        """Done with a fully read answer: its connection goes back to the pool if it can."""
        reusable = self._complete and self._keep_alive and self._error is None
        self._connection.finished(self, reusable)

    def close(self) -> None:
        """Abandon the answer: the connection is closed, never reused."""
        self._connection.finished(self, False)

    # -- fed by the connection -------------------------------------------------------------

    async def wait_head(self) -> None:
        await self._head

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw.append((name, value))

    def on_head(self, status: int, keep_alive: bool) -> None:
        if 100 <= status < 200:  # an interim answer: the real one follows
            self._raw.clear()
            return
        self.status = status
        self._keep_alive = keep_alive
        headers = CIMultiDict(
            (k.decode("latin-1"), v.decode("utf-8", "surrogateescape")) for k, v in self._raw
        )
        self.headers = CIMultiDictProxy(headers)
        encoding = headers.get("Content-Encoding", "").strip().lower()
        if self._decode and encoding in ("gzip", "x-gzip", "deflate"):
            # wbits 47: a zlib or gzip header, detected; raw deflate is tried on first error.
            self._inflater = zlib.decompressobj(47)
            self._raw_deflate_possible = encoding == "deflate"
        elif self._decode and encoding not in ("", "identity"):
            self._fail(aiohttp.ClientPayloadError(f"unsupported Content-Encoding {encoding}"))
            return
        chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        framed = chunked or "Content-Length" in headers
        self._until_eof = not framed and status not in _NO_BODY_STATUSES
        if not self._head.done():
            self._head.set_result(None)

    def on_body(self, data: bytes) -> None:
        if self._inflater is not None:
            try:
                data = self._inflate(data)
            except zlib.error as exc:
                self._fail(aiohttp.ClientPayloadError(f"undecodable body: {exc}"))
                return
            if not data:
                return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self._connection.pause_reading()
        self._wake()

    def _inflate(self, data: bytes) -> bytes:
        assert self._inflater is not None
        try:
            return self._inflater.decompress(data)
        except zlib.error:
            if not self._raw_deflate_possible:
                raise
        # "deflate" sent without its zlib wrapper, as some servers do (aiohttp accepts it too).
        self._raw_deflate_possible = False
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._inflater.decompress(data)

    def on_complete(self) -> None:
        if self.status == 0:
            return  # end of an interim answer
        if self._inflater is not None and (rest := self._inflater.flush()):
            self._chunks.append(rest)
        self._complete = True
        self._wake()

    def unsolicited(self) -> None:
        self._fail(aiohttp.ClientPayloadError("bytes after the end of the answer"))

    def on_begin(self) -> None:
        self._received_any = True

    def on_lost(self, exc: BaseException | None) -> None:
        if self._complete:
            return
        if self.status and self._until_eof and exc is None:
            self._keep_alive = False
            self.on_complete()
        elif not self._received_any and self._connection.reused:
            self._fail(_Stale())
        elif exc is not None:
            self._fail(aiohttp.ClientOSError(getattr(exc, "errno", 0) or 0, str(exc)))
        else:
            self._fail(aiohttp.ServerDisconnectedError())

    def _fail(self, error: BaseException) -> None:
        if self._complete:
            # Trouble after the answer was whole (bytes nobody asked for): the answer stands,
            # the connection goes.
            self._keep_alive = False
            self._connection.finished(self, False)
            return
        if self._error is None:
            self._error = error
        if not self._head.done():
            self._head.set_exception(error)
            self._head.exception()  # retrieved here: a cancelled request never awaits it
        self._wake()
        self._connection.finished(self, False)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class _Connection(asyncio.Protocol):
    """One upstream connection: at most one request at a time, then back to the pool."""

    def __init__(self, pool: H1Pool, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.response: H1Response | None = None
        self.reused = False
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._idle_timer: asyncio.TimerHandle | None = None
        self._reading_paused = False

    def send(self, payload: bytes, decode: bool) -> H1Response:
        assert self.transport is not None
        assert self.response is None
        self.response = H1Response(self, decode)
        self.transport.write(payload)
        return self.response

    def finished(self, response: H1Response, reusable: bool) -> None:
        """`response` is done with; keep the connection only if `reusable`.

        A late call for an answer the connection has moved on from changes nothing.
        """
        if self.response is not response:
            return
        if reusable and not self.closed:
            self.response = None
            self.reused = True
            self.resume_reading()
            self.pool.put_back(self)
        else:
            self.abort()  # first, so that a reader still waiting on `response` is woken
            self.response = None

    def transport_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def idle_for(self, seconds: float) -> None:
        self._idle_timer = self.loop.call_later(seconds, self.abort)

    def take(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()
        self._closed(None)

    def pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:
            self.abort()  # bytes nobody asked for: the connection's framing is lost
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            response._fail(aiohttp.ClientPayloadError(f"malformed HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed(exc)

    def _closed(self, exc: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.take()
        if self.response is not None:
            self.response.on_lost(exc)
        self.pool.forget(self)

    # -- httptools callbacks -----------------------------------------------------------------

    def _receiving(self) -> H1Response | None:
        """The answer the parser's callbacks belong to; None once it is whole.

        A second message on the same connection was not asked for (we never pipeline): the
        answer already complete stands, and the connection is given up.
        """
        response = self.response
        if response is not None and response.is_eof():
            response.unsolicited()
            return None
        return response

    def on_message_begin(self) -> None:
        # The first byte of an answer: from now on a close is a failure, not a stale connection.
        if response := self._receiving():
            response.on_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        if response := self._receiving():
            response.on_header(name, value)

    def on_headers_complete(self) -> None:
        if response := self._receiving():
            keep_alive = self._parser.should_keep_alive()
            response.on_head(self._parser.get_status_code(), keep_alive)

    def on_body(self, body: bytes) -> None:
        if response := self._receiving():
            response.on_body(body)

    def on_message_complete(self) -> None:
        if response := self._receiving():
            response.on_complete()


class H1Pool:
    """Keep-alive connections per origin, at most `limit` open in all."""

    def __init__(
        self,
        limit: int,
        connect_timeout: float,
        keepalive: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._connecting = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self._dns = DnsCache()

    @property
    def open_connections(self) -> int:
        return len(self._open)

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        decode: bool = True,
    ) -> H1Response:
        """Send a request and wait for the head of its answer."""
        try:
            origin, target = split_url(url)
        except ValueError:
            # The URL may carry a key in its query: it is not quoted.
            raise UnsendableRequest("the upstream URL is not a plain http(s) URL") from None
        try:
            payload = serialize_request(method, target, origin, headers, body)
        except ValueError:
            raise UnsendableRequest("a header name or value contains CR or LF") from None
        # Like aiohttp: only an idempotent request is sent again when a reused connection turns
        # out closed, and only once; a POST may have been run (and billed) before the close.
        retries = 1 if method in IDEMPOTENT else 0
        while True:
            connection = await self._acquire(origin)
            response = connection.send(payload, decode)
            try:
                await response.wait_head()
            except _Stale:
                if retries:
                    retries -= 1
                    continue
                raise aiohttp.ServerDisconnectedError() from None
            except BaseException:
                connection.abort()
                raise
            return response

    async def close(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.abort()
        while self._waiters:
            self._wake_one()  # each wakes to find the pool closed

    # -- the pool ----------------------------------------------------------------------------

    async def _acquire(self, origin: Origin) -> _Connection:
        while True:
            if self._closed:
                raise aiohttp.ClientConnectionError("the upstream client is closed")
            idle = self._idle.get(origin)
            while idle:
                connection = idle.pop()
                connection.take()
                if not connection.closed and not connection.transport_closing():
                    return connection
                connection.abort()
            if len(self._open) + self._connecting < self.limit:
                return await self._connect(origin)
            if not self._drop_one_idle():
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                except asyncio.CancelledError:
                    if waiter.done() and not waiter.cancelled():
                        self._wake_one()  # woken, then cancelled: the turn passes on
                    raise

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if origin.scheme == "https" else None
        self._connecting += 1
        try:
            async with asyncio.timeout(self.connect_timeout):
                connection = await self._connect_any(loop, origin, tls)
        except TimeoutError:
            raise  # a subclass of OSError, but the relay reports it as a timeout
        except OSError as exc:
            raise ConnectError(exc) from None
        finally:
            self._connecting -= 1
            self._wake_one()
        self._open.add(connection)
        return connection

    async def _connect_any(
        self, loop: asyncio.AbstractEventLoop, origin: Origin, tls: ssl.SSLContext | None
    ) -> _Connection:
        """A connection to the first of the origin's addresses that accepts one."""
        failure: OSError | None = None
        for family, address, port in await self._dns.resolve(origin.host, origin.port):
            try:
                _, connection = await loop.create_connection(
                    lambda: _Connection(self, origin),
                    address,
                    port,
                    family=family,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
            except TimeoutError:
                raise  # the connect timeout: no time left for another address
            except OSError as exc:
                failure = exc
                continue
            return connection
        assert failure is not None
        raise failure

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def put_back(self, connection: _Connection) -> None:
        if self._closed:
            connection.abort()
            return
        connection.idle_for(self.keepalive)
        self._idle.setdefault(connection.origin, []).append(connection)
        self._wake_one()

    def forget(self, connection: _Connection) -> None:
        self._open.discard(connection)
        idle = self._idle.get(connection.origin)
        if idle and connection in idle:
            idle.remove(connection)
        self._wake_one()

    def _drop_one_idle(self) -> bool:
        """At the limit with idle connections to other origins: close one to make room."""
        for idle in self._idle.values():
            if idle:
                idle[0].abort()
                return True
        return False

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
