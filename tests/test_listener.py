"""The gateway's listening site: bursts accepted at once, descriptor exhaustion survived."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from azproxy import listener
from azproxy.listener import Acceptor, EagerTCPSite

LOOPS = ("asyncio", "uvloop")


async def hello(_: web.Request) -> web.Response:
    return web.Response(text="hello")


@pytest.fixture
async def runner() -> AsyncIterator[web.AppRunner]:
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    yield runner
    await runner.cleanup()


async def start_site(runner: web.AppRunner, **options: object) -> tuple[EagerTCPSite, int]:
    site = EagerTCPSite(runner, "127.0.0.1", 0, backlog=128, **options)  # type: ignore[arg-type]
    await site.start()
    port = runner.addresses[-1][1]
    assert isinstance(port, int)
    return site, port


async def get_root(sock: socket.socket) -> bytes:
    """Send `GET /` on an already connected socket and read the whole answer."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    await loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = b""
    while chunk := await loop.sock_recv(sock, 65536):
        answer += chunk
    sock.close()
    return answer


def connect(port: int) -> socket.socket:
    # A blocking connect completes in the kernel, without the event loop taking any turn.
    return socket.create_connection(("127.0.0.1", port))


class FlakyListener:
    """A listening socket whose first accept() fails with `error`; it counts every call."""

    def __init__(self, sock: socket.socket, error: int) -> None:
        self.sock = sock
        self.error: int | None = error
        self.accepts = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def accept(self) -> tuple[socket.socket, object]:
        self.accepts += 1
        if self.error is not None:
            error, self.error = self.error, None
            raise OSError(error, "injected")
        return self.sock.accept()

    def close(self) -> None:
        self.sock.close()


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


async def test_serves_http_on_the_bound_port(runner: web.AppRunner) -> None:
    _, port = await start_site(runner)
    answer = await get_root(connect(port))
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nhello")


@pytest.mark.parametrize(
    ("bound", "first_wake_up"),
    [(512, 40), (16, 16)],
    ids=["all-in-one-wake-up", "beyond-the-bound-taken-at-the-next-turns"],
)
async def test_a_burst_of_connections_is_accepted_at_once(
    runner: web.AppRunner, monkeypatch: pytest.MonkeyPatch, bound: int, first_wake_up: int
) -> None:
    monkeypatch.setattr(listener, "ACCEPTS_PER_WAKE_UP", bound)
    site, port = await start_site(runner)
    clients = [connect(port) for _ in range(40)]  # all 40 wait in the kernel's accept queue
    acceptor = site._server
    assert isinstance(acceptor, Acceptor)
    acceptor._accept_all(acceptor.sockets[0])
    assert len(acceptor._setting_up) == first_wake_up
    answers = await asyncio.gather(*(get_root(client) for client in clients))
    assert all(answer.endswith(b"\r\n\r\nhello") for answer in answers)


async def test_out_of_descriptors_pauses_accepting_then_resumes(
    runner: web.AppRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listener, "RETRY_AFTER_EMFILE", 0.01)
    flaky = FlakyListener(listening_socket(), errno.EMFILE)
    assert runner.server is not None
    acceptor = Acceptor([flaky], runner.server)  # type: ignore[list-item]
    await acceptor.start_serving()
    try:
        client = connect(flaky.sock.getsockname()[1])
        acceptor._accept_all(flaky)  # type: ignore[arg-type]
        # No spinning (or skipping ahead) on a socket that stays readable while short of fds.
        assert flaky.accepts == 1
        answer = await get_root(client)
        assert flaky.accepts == 3  # after the pause: the connection, then the empty queue
        assert answer.endswith(b"\r\n\r\nhello")
    finally:
        acceptor.close()


async def test_a_client_gone_before_accept_does_not_stop_the_others(
    runner: web.AppRunner,
) -> None:
    flaky = FlakyListener(listening_socket(), errno.ECONNABORTED)
    assert runner.server is not None
    acceptor = Acceptor([flaky], runner.server)  # type: ignore[list-item]
    await acceptor.start_serving()
    try:
        client = connect(flaky.sock.getsockname()[1])
        acceptor._accept_all(flaky)  # type: ignore[arg-type]
        assert flaky.accepts == 3  # aborted, accepted, empty: all in the same wake-up
        assert (await get_root(client)).endswith(b"\r\n\r\nhello")
    finally:
        acceptor.close()


async def test_stopping_the_site_closes_the_port(runner: web.AppRunner) -> None:
    site, port = await start_site(runner)
    await site.stop()
    with pytest.raises(ConnectionRefusedError):
        connect(port)


async def test_reuse_port_lets_workers_share_the_port(runner: web.AppRunner) -> None:
    _, port = await start_site(runner, reuse_port=True)
    second = EagerTCPSite(runner, "127.0.0.1", port, backlog=128, reuse_port=True)
    await second.start()
    alone = EagerTCPSite(runner, "127.0.0.1", port, backlog=128)
    with pytest.raises(OSError, match="in use"):
        await alone.start()


async def test_a_name_binds_every_address_it_resolves_to() -> None:
    loop = asyncio.get_running_loop()
    resolved = await loop.getaddrinfo(
        "localhost", 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets = await listener.bind_sockets("localhost", 0, backlog=8, reuse_port=False)
    try:
        assert sorted(s.family for s in sockets) == sorted({info[0] for info in resolved})
        assert all(s.getsockname()[0] in {"127.0.0.1", "::1"} for s in sockets)
    finally:
        for sock in sockets:
            sock.close()


async def test_an_address_in_use_is_named_in_the_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(listener.ListenError) as failure:
            await listener.bind_sockets("127.0.0.1", port, backlog=8, reuse_port=False)
    assert failure.value.strerror == f"cannot listen on 127.0.0.1:{port}: address already in use"


async def test_a_host_that_does_not_resolve_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def unknown(*_: object, **__: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", unknown)
    with pytest.raises(listener.ListenError) as failure:
        await listener.bind_sockets("gateway.internal", 8080, backlog=8, reuse_port=False)
    expected = "cannot resolve 'gateway.internal' to listen on: Name or service not known"
    assert failure.value.strerror == expected
