"""A fake Azure OpenAI that streams chat completions as SSE, cheaply enough never to bottleneck.

Every request (any method, any path but `.../audio/...`) is answered with an Azure-shaped
`text/event-stream` in chunked encoding: Azure's prompt-filter event, then `chunks` chat
chunks, the first at once and the rest every `interval` ms, then `data: [DONE]`. The request
body is read and ignored. Per request, the `x-bench-chunks` and `x-bench-interval-ms` headers
(they cross the gateway) or the `chunks` and `interval_ms` query parameters (direct calls only:
the gateway builds its own query) override the defaults given on the command line.
Connections are kept alive, so the gateway's pool reuses them. A path with `/audio/`
(transcriptions, translations) gets a small JSON answer instead, once its body (a multipart
upload of any size, discarded as it arrives) has been read.

A raw asyncio Protocol on uvloop when installed: each event is one pre-encoded `write`, and
streams due in the same millisecond share one timer, set for an absolute deadline so that
intervals do not drift.

    python bench/sse_upstream.py --port 8081 [--chunks 64] [--interval-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import socket
from typing import cast
from urllib.parse import parse_qs, urlsplit

SYSTEM_FINGERPRINT = "fp_ee1d74bde0"
MODEL = "gpt-4o-2024-11-20"
_SAFE = {c: {"filtered": False, "severity": "safe"} for c in ("hate", "self_harm", "sexual")}
_SAFE["violence"] = {"filtered": False, "severity": "safe"}


def _event(obj: dict[str, object]) -> bytes:
    # Azure serialises keys alphabetically and compactly.
    return b"data: " + json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n\n"


def _frame(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _chunk(delta: dict[str, str], finish: str | None) -> dict[str, object]:
    return {
        "choices": [
            {
                "content_filter_results": {} if finish else _SAFE,
                "delta": delta,
                "finish_reason": finish,
                "index": 0,
                "logprobs": None,
            }
        ],
        "created": 1732252800,
        "id": "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012",
        "model": MODEL,
        "object": "chat.completion.chunk",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


PROMPT_FILTER = _frame(
    _event(
        {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [
                {
                    "prompt_index": 0,
                    "content_filter_results": {
                        **_SAFE,
                        "jailbreak": {"filtered": False, "detected": False},
                    },
                }
            ],
        }
    )
)
ROLE = _frame(_event(_chunk({"content": "", "role": "assistant"}, None)))
TOKEN = _frame(_event(_chunk({"content": " token"}, None)))
STOP = _frame(_event(_chunk({}, "stop")))
END = _frame(b"data: [DONE]\n\n") + b"0\r\n\r\n"

HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"Cache-Control: no-cache, must-revalidate\r\n"
    b"apim-request-id: 6a1c3b0e-5f1e-4a4e-9d1b-2f1c0e9a7b11\r\n"
    b"x-request-id: 0c2d6f7e-3b5a-4c1d-8e9f-a1b2c3d4e5f6\r\n"
    b"x-ms-region: Sweden Central\r\n"
    b"x-ratelimit-remaining-requests: 9999\r\n"
    b"x-ratelimit-remaining-tokens: 9999000\r\n"
    b"Strict-Transport-Security: max-age=31536000; includeSubDomains; preload\r\n"
    b"x-content-type-options: nosniff\r\n"
    b"\r\n"
)


_TEXT = b'{"text":"Hello from the benchmark upstream."}'
TRANSCRIPTION = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"apim-request-id: 6a1c3b0e-5f1e-4a4e-9d1b-2f1c0e9a7b11\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_TEXT), _TEXT)
)


def chunk_frames(count: int) -> list[bytes]:
    """What to write at each tick of one stream of `count` chat chunks.

    As Azure does, the stream opens with a prompt-filter event (no choices); it goes out in
    the same write as the first chunk, because a gateway may drop it (azproxy's stream
    normaliser does) and the first chunk must then be just as early. The last write carries
    `[DONE]` and the end of the body.
    """
    if count <= 1:
        return [PROMPT_FILTER + STOP + END]
    return [PROMPT_FILTER + ROLE, *[TOKEN] * (count - 2), STOP + END]


class Ticker:
    """One timer per millisecond that has work, not one per stream.

    Streams due in the same millisecond share one loop callback, so at 1,000 streams every
    20 ms the cost per event is about one `write`, not a timer plus a write.
    """

    def __init__(self) -> None:
        self.due: dict[int, list[SSEStream]] = {}

    def at(self, when: float, stream: SSEStream) -> None:
        key = math.ceil(when * 1000)
        bucket = self.due.get(key)
        if bucket is None:
            self.due[key] = [stream]
            asyncio.get_running_loop().call_at(key / 1000, self.fire, key)
        else:
            bucket.append(stream)

    def fire(self, key: int) -> None:
        for stream in self.due.pop(key, ()):
            stream.tick()


class SSEStream(asyncio.Protocol):
    """One client connection: HTTP/1.1 keep-alive, one request at a time.

    The request body is discarded as it arrives (Content-Length or chunked), so an upload of
    any size costs no memory here; the answer goes out once the whole body has been read.
    """

    def __init__(self, ticker: Ticker, chunks: int, interval: float) -> None:
        self.ticker = ticker
        self.default_chunks = chunks
        self.default_interval = interval
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False  # a request is being read or answered
        self.close_after = False
        self.head: list[str] = []
        self.headers: dict[str, str] = {}
        self.body_left = 0  # Content-Length bytes still to discard
        self.chunked = False
        # chunked: bytes left in this chunk; -1 before a size line, -2 after the last chunk
        self.chunk_left = -1
        self.frames: list[bytes] = []
        self.sent = 0
        self.start = 0.0
        self.interval = interval

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None  # a pending tick finds no transport and does nothing

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.advance()

    def advance(self) -> None:
        """Read as far as the buffer allows: head, body, then answer."""
        while self.transport is not None:
            if not self.busy:
                if not self.read_head():
                    return
            elif self.head:
                if not self.read_body():
                    return
                self.answer()
            else:
                return  # answering (streaming); the next request waits in the buffer

    def read_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        self.head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[: end + 4]
        self.headers = {}
        for line in self.head[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self.chunk_left = -1
        self.body_left = 0 if self.chunked else int(self.headers.get("content-length") or 0)
        self.busy = True
        if self.headers.get("expect", "").lower() == "100-continue" and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def read_body(self) -> bool:
        """Discard body bytes; True once the whole body has been read."""
        if not self.chunked:
            take = min(self.body_left, len(self.buffer))
            del self.buffer[:take]
            self.body_left -= take
            return self.body_left == 0
        while True:
            if self.chunk_left == -2:  # after the last chunk: trailer lines, then an empty one
                line_end = self.buffer.find(b"\r\n")
                if line_end < 0:
                    return False
                del self.buffer[: line_end + 2]
                if line_end == 0:
                    return True
                continue
            if self.chunk_left > 0:
                take = min(self.chunk_left, len(self.buffer))
                del self.buffer[:take]
                self.chunk_left -= take
                if self.chunk_left:
                    return False
            if self.chunk_left == 0:  # the CRLF after a chunk's data
                if len(self.buffer) < 2:
                    return False
                del self.buffer[:2]
                self.chunk_left = -1
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                return False
            size = int(bytes(self.buffer[:line_end]).split(b";")[0], 16)
            del self.buffer[: line_end + 2]
            self.chunk_left = size if size else -2

    def answer(self) -> None:
        assert self.transport is not None
        target = self.head[0].split(" ")[1] if " " in self.head[0] else "/"
        self.head = []
        self.close_after = self.headers.get("connection", "").lower() == "close"
        if "/audio/" in target:
            self.transport.write(TRANSCRIPTION)
            self.finish()
            return
        query = parse_qs(urlsplit(target).query)
        headers = self.headers
        chunks = int(headers.get("x-bench-chunks") or query.get("chunks", [self.default_chunks])[0])
        interval_ms = headers.get("x-bench-interval-ms") or query.get("interval_ms", [None])[0]
        self.interval = float(interval_ms) / 1000 if interval_ms else self.default_interval
        self.frames = chunk_frames(max(1, chunks))
        self.sent = 1
        self.start = asyncio.get_running_loop().time()
        self.transport.write(HEAD + self.frames[0])
        self.schedule_or_finish()

    def schedule_or_finish(self) -> None:
        if self.sent < len(self.frames):
            # Absolute deadlines: a late tick does not push the later ones back.
            self.ticker.at(self.start + self.sent * self.interval, self)
            return
        self.finish()

    def finish(self) -> None:
        self.busy = False
        if self.close_after and self.transport is not None:
            self.transport.close()
        elif self.buffer:
            asyncio.get_running_loop().call_soon(self.advance)

    def tick(self) -> None:
        if self.transport is None:
            return
        self.transport.write(self.frames[self.sent])
        self.sent += 1
        self.schedule_or_finish()


async def serve(host: str, port: int, chunks: int, interval: float) -> None:
    loop = asyncio.get_running_loop()
    ticker = Ticker()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(65535)
    listener.setblocking(False)
    pending: set[asyncio.Task[object]] = set()

    def accept_all() -> None:
        # Our own accept loop: every waiting connection at each wake-up. Under load, uvloop's
        # create_server was seen to leave connections in the accept queue for ~0.5 s (1,000
        # streams on one core); this keeps the upstream's own accept delay out of the figures.
        while True:
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE and the like: try again at the next wake-up
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = loop.create_task(
                loop.connect_accepted_socket(lambda: SSEStream(ticker, chunks, interval), conn)
            )
            pending.add(task)
            task.add_done_callback(_settled)

    def _settled(task: asyncio.Task[object]) -> None:
        pending.discard(task)
        if not task.cancelled():
            task.exception()  # a client gone before its transport was set up: nothing to do

    loop.add_reader(listener.fileno(), accept_all)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(
        f"sse_upstream listening on http://{host}:{port} ({chunks} chunks every "
        f"{interval * 1000:g} ms)",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        loop.remove_reader(listener.fileno())
        listener.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--chunks", type=int, default=64, help="chat chunks per stream")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="gap between events")
    args = parser.parse_args()
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(args.host, args.port, args.chunks, args.interval_ms / 1000))


if __name__ == "__main__":
    main()
