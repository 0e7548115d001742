"""The listening socket: every waiting connection accepted at each wake-up (up to 512).

uvloop's server (libuv) accepts one connection per event-loop iteration. While a thousand
streams keep the loop busy, each iteration takes milliseconds, so a burst of new clients
waits in the kernel's accept queue for seconds (measured: 1,000 streams started at once, the
last accepted 2.7 s after its handshake). This site drains the accept queue whenever the
socket is readable, on any event loop, and hands each connection to aiohttp's server.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web
from yarl import URL

# Connections taken per wake-up at most: one turn of accepting then costs a few milliseconds.
ACCEPTS_PER_WAKE_UP = 512
# After the process or system runs out of descriptors, accepting pauses this long (asyncio's
# own value) instead of spinning on a socket that stays readable.
RETRY_AFTER_EMFILE = 1.0
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class ListenError(OSError):
    """The gateway's address cannot be listened on; `strerror` says which and why."""


async def bind_sockets(
    host: str, port: int, *, backlog: int, reuse_port: bool
) -> list[socket.socket]:
    """Listening sockets for `host:port`, one per address it resolves to (as asyncio binds).

    Raises ListenError, naming the address, when one cannot be listened on.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        reason = exc.strerror
        raise ListenError(exc.errno, f"cannot resolve {host!r} to listen on: {reason}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            _listen(sock, address, backlog, reuse_port)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _listen(sock: socket.socket, address: tuple[Any, ...], backlog: int, reuse_port: bool) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if sock.family == socket.AF_INET6:
        # One socket per family, as asyncio does; a v6 socket must not claim v4 too.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        host = f"[{address[0]}]" if sock.family == socket.AF_INET6 else address[0]
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ListenError(exc.errno, f"cannot listen on {host}:{address[1]}: {reason}") from None
    sock.listen(backlog)
    sock.setblocking(False)


class Acceptor(asyncio.AbstractServer):
    """Accepts from listening sockets until each is empty (or 512 taken), at every wake-up."""

    def __init__(
        self,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], asyncio.Protocol],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._sockets = sockets
        self._factory = protocol_factory
        self._setting_up: set[asyncio.Task[object]] = set()
        self._serving = False

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._sockets)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        if not self._serving and self._sockets:
            self._serving = True
            for sock in self._sockets:
                self._loop.add_reader(sock.fileno(), self._accept_all, sock)

    def close(self) -> None:
        self._serving = False
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets = []

    async def serve_forever(self) -> None:
        raise NotImplementedError("azproxy serves through aiohttp's runner, not serve_forever")

    async def wait_closed(self) -> None:
        # Connections being set up belong to aiohttp's server once made; it drains them.
        if self._setting_up:
            await asyncio.wait(list(self._setting_up))

    def _accept_all(self, listener: socket.socket) -> None:
        # Bounded, so a burst of thousands cannot hold up the open streams' chunks for long;
        # the socket stays readable and the rest are taken at the loop's next turn.
        for _ in range(ACCEPTS_PER_WAKE_UP):
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_DESCRIPTORS:
                    self._pause(listener)
                    return
                continue  # ECONNABORTED and the like: that client is gone, take the next
            self._hand_over(conn)

    def _hand_over(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = self._loop.create_task(self._loop.connect_accepted_socket(self._factory, conn))
        self._setting_up.add(task)
        task.add_done_callback(self._set_up)

    def _set_up(self, task: asyncio.Task[object]) -> None:
        self._setting_up.discard(task)
        if not task.cancelled():
            task.exception()  # a client gone before its transport was made: nothing to do

    def _pause(self, listener: socket.socket) -> None:
        self._loop.remove_reader(listener.fileno())
        self._loop.call_later(RETRY_AFTER_EMFILE, self._resume, listener)

    def _resume(self, listener: socket.socket) -> None:
        if self._serving and listener in self._sockets:
            self._loop.add_reader(listener.fileno(), self._accept_all, listener)


class EagerTCPSite(web.BaseSite):
    """`web.TCPSite`, except that a burst of new connections is accepted at once."""

    __slots__ = ("_host", "_port", "_reuse_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        backlog: int,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._reuse_port = reuse_port

    @property
    def name(self) -> str:
        return str(URL.build(scheme="http", host=self._host, port=self._port))

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None  # BaseSite refuses a runner that is not set up
        sockets = await bind_sockets(
            self._host, self._port, backlog=self._backlog, reuse_port=self._reuse_port
        )
        acceptor = Acceptor(sockets, server)
        await acceptor.start_serving()
        self._server = acceptor
