"""Logs: one access line per request with what an operator needs, the request id tying the
client, the log and Azure together, and never a secret in a log, header or body."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator, Mapping

import aiohttp
import pytest
from yarl import URL

from azproxy.emulator import EmulatorState, Fault

from .support import Gateway, GatewayFactory, auth

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
ACCESS = "azproxy.access"
ACCESS_LINE = re.compile(
    r"(?P<method>[A-Z]+) (?P<path>\S+) model=(?P<model>\S+) deployment=(?P<deployment>\S+) "
    r"status=(?P<status>\d{3}) upstream=(?P<upstream>\S+) duration_ms=(?P<duration>\d+\.\d) "
    r"bytes=(?P<bytes>\d+) id=(?P<id>\S+)"
)


class AccessLines(logging.Handler):
    """Collects access-log records and wakes whoever waits for them (same loop, same thread)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self._arrived = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._arrived.set()

    def lines(self) -> list[re.Match[str]]:
        matches = []
        for record in self.records:
            match = ACCESS_LINE.fullmatch(record.getMessage())
            assert match is not None, record.getMessage()
            matches.append(match)
        return matches

    async def wait_for(self, count: int, timeout: float = 5) -> list[re.Match[str]]:
        """The lines once `count` are logged: aiohttp logs only after sending the response."""
        async with asyncio.timeout(timeout):
            while len(self.records) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.lines()


@pytest.fixture(autouse=True)
def access(caplog: pytest.LogCaptureFixture) -> Iterator[AccessLines]:
    caplog.set_level(logging.INFO, logger="azproxy")
    caplog.set_level(logging.INFO, logger=ACCESS)
    handler = AccessLines()
    logger = logging.getLogger(ACCESS)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


async def test_one_access_line_per_request(
    gateway: Gateway, http: aiohttp.ClientSession, access: AccessLines
) -> None:
    ids = []
    for body in (CHAT, {**CHAT, "stream": True}):
        async with http.post(
            gateway.url("/v1/chat/completions?api-version=x"), json=body, headers=auth()
        ) as resp:
            assert resp.status == 200
            payload = await resp.read()
            ids.append(resp.headers["x-request-id"])
        lines = await access.wait_for(len(ids))
        line = lines[-1]
        assert line["method"] == "POST"
        assert line["path"] == "/v1/chat/completions"  # no query string: it can carry keys
        assert line["model"] == "gpt-4o"
        assert line["deployment"] == "gpt-4o"
        assert line["status"] == "200"
        assert line["upstream"] == "200"
        assert float(line["duration"]) >= 0
        # aiohttp's count, as its own `%b`: everything written, headers included.
        assert int(line["bytes"]) > len(payload)
        assert line["id"] == ids[-1]
    assert len(access.lines()) == 2
    assert len(set(ids)) == 2


async def test_access_line_of_a_mapped_model_and_of_local_errors(
    start_gateway: GatewayFactory, http: aiohttp.ClientSession, access: AccessLines
) -> None:
    gateway = await start_gateway(AZURE_OPENAI_MODEL_MAPPER="gpt-4o=prod-4o")
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=auth()) as r:
        assert r.status == 200
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT) as r:
        assert r.status == 401
    async with http.get(gateway.url("/v1/nope")) as r:
        assert r.status == 404
    mapped, unauthorized, unknown = await access.wait_for(3)
    assert (mapped["model"], mapped["deployment"], mapped["upstream"]) == (
        "gpt-4o",
        "prod-4o",
        "200",
    )
    assert (unauthorized["status"], unauthorized["upstream"]) == ("401", "-")
    assert (unknown["method"], unknown["path"], unknown["status"]) == ("GET", "/v1/nope", "404")


@pytest.mark.parametrize("stream", [False, True])
async def test_client_request_id_is_echoed_and_logged(
    gateway: Gateway,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
    access: AccessLines,
    stream: bool,
) -> None:
    headers = {**auth(), "x-request-id": "my-trace-1"}
    body = {**CHAT, "stream": stream}
    async with http.post(gateway.url("/v1/chat/completions"), json=body, headers=headers) as r:
        assert r.status == 200
        assert r.headers.getall("x-request-id") == ["my-trace-1"]
        await r.read()
    (line,) = await access.wait_for(1)
    assert line["id"] == "my-trace-1"


async def test_client_request_id_on_a_local_error(
    gateway: Gateway, http: aiohttp.ClientSession, access: AccessLines
) -> None:
    async with http.post(
        gateway.url("/v1/chat/completions"), json=CHAT, headers={"x-request-id": "my-trace-2"}
    ) as r:
        assert r.status == 401
        assert r.headers["x-request-id"] == "my-trace-2"
    (line,) = await access.wait_for(1)
    assert line["id"] == "my-trace-2"


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        ("POST", "/v1/chat/completions", auth(), CHAT, 200),
        ("POST", "/v1/chat/completions", auth(), {**CHAT, "stream": True}, 200),
        ("POST", "/v1/chat/completions", {}, CHAT, 401),
        ("POST", "/v1/chat/completions", auth(), {"messages": []}, 400),
        ("GET", "/v1/models", {}, None, 200),
        ("GET", "/v1/nope", {}, None, 404),
        ("GET", "/v1/chat/completions", {}, None, 405),
    ],
)
async def test_generated_request_id_is_the_logged_one(
    gateway: Gateway,
    http: aiohttp.ClientSession,
    access: AccessLines,
    method: str,
    path: str,
    headers: dict[str, str],
    body: dict[str, object] | None,
    status: int,
) -> None:
    async with http.request(method, gateway.url(path), json=body, headers=headers) as r:
        assert r.status == status
        ids = r.headers.getall("x-request-id")
        await r.read()
    assert len(ids) == 1
    assert ids[0]
    (line,) = await access.wait_for(1)
    assert line["id"] == ids[0]


async def test_unusable_client_request_id_is_replaced(
    gateway: Gateway,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    access: AccessLines,
) -> None:
    # Echoed in headers and logs, so only a plain token is taken from the client.
    hostile = "id with spaces id=forged"
    headers = {**auth(), "x-request-id": hostile}
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=headers) as r:
        assert r.status == 200
        returned = r.headers["x-request-id"]
    assert returned != hostile
    (line,) = await access.wait_for(1)
    assert line["id"] == returned
    assert "forged" not in caplog.text


async def test_client_leaving_mid_stream_is_logged(
    gateway: Gateway, http: aiohttp.ClientSession, emulator: EmulatorState, access: AccessLines
) -> None:
    emulator.add_fault(Fault(kind="stall", after_chunks=2))
    headers = {**auth(), "x-request-id": "gone-1"}
    body = {**CHAT, "stream": True}
    url = gateway.url("/v1/chat/completions")
    async with asyncio.timeout(10), http.post(url, json=body, headers=headers) as resp:
        assert resp.status == 200
        assert (await resp.content.readline()).startswith(b"data: ")
        # Leaving with the body unread closes the connection.
    async with asyncio.timeout(5):
        await emulator.aborted.wait()  # the gateway has given up on the upstream too
    (line,) = await access.wait_for(1, timeout=2)
    assert (line["path"], line["id"]) == ("/v1/chat/completions", "gone-1")


PLAIN = "PLAINSECRET1"
TRIPLE_KEY = "SECRETKEY123"
HEADER_KEY = "HDRSECRET9"
QUERY_KEY = "QSECRET"
TOKEN = "TOKSECRET"
WRONG_KEY = "WRONGSECRET7"
SECRETS = (PLAIN, TRIPLE_KEY, HEADER_KEY, QUERY_KEY, TOKEN, WRONG_KEY)


class Exchanges:
    """Every response header and body seen, to search them for secrets afterwards."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.seen: list[str] = []
        self.count = 0

    async def post(
        self, url: URL, body: Mapping[str, object], headers: Mapping[str, str]
    ) -> tuple[int, str]:
        async with self.http.post(url, json=body, headers=headers) as resp:
            text = (await resp.read()).decode(errors="replace")
            self.seen.append(f"{resp.status} {resp.raw_headers!r}\n{text}")
            self.count += 1
            return resp.status, text


def assert_no_secret(caplog: pytest.LogCaptureFixture, seen: list[str]) -> None:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts = [caplog.text, *seen]
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), formatter.format(record)]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text)


async def test_no_secret_in_logs_headers_or_bodies(
    start_gateway: GatewayFactory,
    azure_url: str,
    http: aiohttp.ClientSession,
    emulator: EmulatorState,
    caplog: pytest.LogCaptureFixture,
    access: AccessLines,
) -> None:
    emulator.keys = frozenset({PLAIN, TRIPLE_KEY, HEADER_KEY, TOKEN})
    emulator.deployments = frozenset({"gpt-4o", "dep"})
    gateway = await start_gateway(AZURE_OPENAI_RESOURCE_ENDPOINT=f"{azure_url}/{{resource}}")
    tokened = await start_gateway(AZURE_OPENAI_TOKEN=TOKEN)
    unreachable = await start_gateway(AZURE_OPENAI_ENDPOINT="http://127.0.0.1:1")
    unreachable_tokened = await start_gateway(
        AZURE_OPENAI_ENDPOINT="http://127.0.0.1:1", AZURE_OPENAI_TOKEN=TOKEN
    )
    x = Exchanges(http)
    chat = "/v1/chat/completions"
    stream = {**CHAT, "stream": True}
    triple = auth(f"res:gpt-4|dep:{TRIPLE_KEY}")

    assert (await x.post(gateway.url(chat), CHAT, auth(PLAIN)))[0] == 200
    assert (await x.post(gateway.url(chat), stream, auth(PLAIN)))[0] == 200
    assert (await x.post(gateway.url(chat), CHAT, triple))[0] == 200
    assert (await x.post(gateway.url(chat), stream, triple))[0] == 200
    assert (await x.post(gateway.url(chat), CHAT, {"api-key": HEADER_KEY}))[0] == 200
    query_url = gateway.url(chat).with_query({"api-key": QUERY_KEY})
    assert (await x.post(query_url, CHAT, {}))[0] == 401
    assert (await x.post(query_url, CHAT, auth(PLAIN)))[0] == 200
    assert (await x.post(tokened.url(chat), CHAT, auth(PLAIN)))[0] == 200
    assert (await x.post(tokened.url(chat), stream, {}))[0] == 200
    # Errors: local and upstream 401, DeploymentNotFound, unreachable, malformed triple key.
    assert (await x.post(gateway.url(chat), CHAT, {}))[0] == 401
    assert (await x.post(gateway.url(chat), CHAT, auth(WRONG_KEY)))[0] == 401
    assert (await x.post(gateway.url(chat), CHAT, {"api-key": WRONG_KEY}))[0] == 401
    assert (await x.post(gateway.url(chat), CHAT, auth(f"res:dep:{WRONG_KEY}:x y")))[0] == 401
    missing = {**CHAT, "model": "missing-model"}
    assert (await x.post(gateway.url(chat), missing, auth(PLAIN)))[0] == 404
    assert (await x.post(tokened.url(chat), missing, {}))[0] == 404
    assert (await x.post(gateway.url(chat), {**CHAT, "model": "gpt-4"}, triple))[0] == 200
    emulator.deployments = frozenset({"gpt-4o"})
    assert (await x.post(gateway.url(chat), CHAT, triple))[0] == 404
    assert (await x.post(unreachable.url(chat), CHAT, auth(PLAIN)))[0] == 502
    assert (await x.post(unreachable.url(chat), stream, {"api-key": HEADER_KEY}))[0] == 502
    assert (await x.post(unreachable_tokened.url(chat), CHAT, {}))[0] == 502
    # Mid-stream resets: the gateway logs a warning and ends the stream with an error event.
    for url, headers in ((gateway.url(chat), auth(PLAIN)), (tokened.url(chat), {})):
        emulator.add_fault(Fault(kind="reset", after_chunks=1))
        status, text = await x.post(url, stream, headers)
        assert status == 200
        assert '"error"' in text
    await access.wait_for(x.count)
    assert any(r.levelno == logging.WARNING for r in caplog.records)  # the resets
    assert_no_secret(caplog, x.seen)


async def test_no_secret_logged_for_an_oversized_authorization_header(
    gateway: Gateway, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    # aiohttp's parser error quoted the line's first 100 bytes in its page and ERROR log.
    headers = {"Authorization": f"Bearer {PLAIN}" + "x" * 9000}
    async with http.post(gateway.url("/v1/chat/completions"), json=CHAT, headers=headers) as r:
        assert r.status in (400, 431)
        text = await r.text()
    assert_no_secret(caplog, [text])
