"""Open N SSE chat-completion streams at once and time every event.

Per stream: time to first chunk (from just before the connection is opened to the first
complete chat chunk) and every gap between consecutive chunks; across streams, the chunks
received against the chunks expected, and how many streams were open at the same time. Azure's
prompt-filter event (no choices; a gateway may drop it, as azproxy's stream normaliser does) and
`data: [DONE]` are not chunks: they are counted apart.

Two clients, same measurements:

- `--client raw` (default): an asyncio Protocol per stream that writes one HTTP/1.1 request
  and counts SSE events in the chunked body as bytes arrive: about half the CPU per event of
  aiohttp's client, whose parser, StreamReader and task wake-ups would otherwise make the load
  core, not the gateway, the limit at 1,000 streams every 20 ms.
- `--client aiohttp`: aiohttp's client, as an SDK would read a stream; to cross-check the raw
  client, or for fewer streams.

While running it prints progress lines that `bench/bench.py` watches (to sample the gateway's
memory while every stream is open), then one JSON summary as its last line:

    ALL_OPEN <n> <seconds since start>    every stream has had its first chunk, none has ended
    FIRST_DONE <seconds since start>      the first stream has ended
    {"streams": ..., "lost": ..., "ttfc_ms": {...}, "gap_ms": {...}, ...}

    python bench/stream_load.py http://127.0.0.1:8080/v1/chat/completions -n 1000 \
        --chunks 64 --interval-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import aiohttp

BODY = b'{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}'
DONE = b"data: [DONE]"
PROMPT_FILTER = b'"prompt_filter_results"'
CARRY = 32  # bytes kept from the previous read: longer than any marker searched for
# The last chunk of a chunked body; SSE events use bare \n, so this never occurs inside one.
LAST_CHUNK = b"\r\n0\r\n\r\n"


@dataclass
class Tally:
    """What every stream adds to; one per round."""

    n: int
    ttfc: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    chunks: int = 0
    prompt_filters: int = 0
    completed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    open_now: int = 0
    peak_open: int = 0
    all_open_reported: bool = False
    first_done_reported: bool = False
    t0: float = 0.0

    def opened(self) -> None:
        self.open_now += 1
        self.peak_open = max(self.peak_open, self.open_now)
        if self.open_now == self.n and not self.all_open_reported:
            self.all_open_reported = True
            print(f"ALL_OPEN {self.n} {time.perf_counter() - self.t0:.3f}", flush=True)

    def closed(self) -> None:
        self.open_now -= 1
        if not self.first_done_reported:
            self.first_done_reported = True
            print(f"FIRST_DONE {time.perf_counter() - self.t0:.3f}", flush=True)


class Stream:
    """The record of one stream: events as they arrive, then its end."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.started = time.perf_counter()
        self.last = 0.0
        self.got = 0
        self.done = False

    def events(self, count: int, now: float) -> None:
        """`count` data events completed by one read at `now` (the first gap, then zeros)."""
        if count <= 0:
            return
        tally = self.tally
        if self.got == 0:
            tally.ttfc.append(now - self.started)
            tally.opened()
            tally.gaps.extend([0.0] * (count - 1))
        else:
            tally.gaps.append(now - self.last)
            tally.gaps.extend([0.0] * (count - 1))
        self.last = now
        self.got += count

    def end(self) -> None:
        self.tally.chunks += self.got
        if self.done:
            self.tally.completed += 1
        if self.got:
            self.tally.closed()


# --- the raw client -----------------------------------------------------------------------


class RawStream(asyncio.Protocol):
    """One connection, one request, one SSE response counted as it arrives."""

    def __init__(self, request: bytes, stream: Stream, finished: asyncio.Future[None]) -> None:
        self.request = request
        self.stream = stream
        self.finished = finished
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.in_body = False
        self.carry = b""  # the last bytes seen, for markers split across reads

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.head[: self.head.find(b"\r\n")]
            if not status.startswith(b"HTTP/1.1 200"):
                self._fail(f"HTTP {status[9:12].decode(errors='replace')}")
                return
            data = self.head[end + 4 :]
            self.in_body = True
            self.head = b""
        carry = self.carry
        joined = carry + data
        # Count event ends in the new bytes only (one split across reads included); events
        # that are not chat chunks are counted apart.
        count = joined.count(b"\n\n") - carry.count(b"\n\n")
        filters = joined.count(PROMPT_FILTER) - carry.count(PROMPT_FILTER)
        if filters:
            self.stream.tally.prompt_filters += filters
            count -= filters
        if not self.stream.done and DONE in joined:
            self.stream.done = True
            count -= 1
        self.stream.events(count, now)
        self.carry = joined[-CARRY:]
        if LAST_CHUNK in joined:
            self._finish()

    def _fail(self, reason: str) -> None:
        self.stream.tally.errors[reason] += 1
        self._finish()

    def _finish(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self.finished.done():
            self.finished.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            if not self.stream.done:
                reason = type(exc).__name__ if exc else "closed early"
                self.stream.tally.errors[reason] += 1
            self.finished.set_result(None)


async def raw_stream(target: tuple[str, int, bytes], tally: Tally, deadline: float) -> None:
    host, port, request = target
    loop = asyncio.get_running_loop()
    stream = Stream(tally)
    finished: asyncio.Future[None] = loop.create_future()
    transport: asyncio.BaseTransport | None = None
    try:
        async with asyncio.timeout(deadline):
            transport, _ = await loop.create_connection(
                lambda: RawStream(request, stream, finished), host, port
            )
            await finished
    except TimeoutError:
        tally.errors["timeout"] += 1
    except OSError as exc:
        tally.errors[f"OSError {exc.errno}"] += 1
    finally:
        if transport is not None:
            transport.close()
        stream.end()


def raw_target(url: str, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(BODY)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + BODY


# --- the aiohttp client -------------------------------------------------------------------


async def aiohttp_stream(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], tally: Tally, deadline: float
) -> None:
    stream = Stream(tally)
    try:
        async with asyncio.timeout(deadline), session.post(url, data=BODY, headers=headers) as r:
            if r.status != 200:
                tally.errors[f"HTTP {r.status}"] += 1
                await r.read()
                return
            buffer = b""
            async for data in r.content.iter_any():
                now = time.perf_counter()
                buffer += data
                if b"\n\n" not in buffer:
                    continue
                *events, buffer = buffer.split(b"\n\n")
                count = 0
                for event in events:
                    if event.startswith(DONE):
                        stream.done = True
                    elif PROMPT_FILTER in event:
                        tally.prompt_filters += 1
                    elif event.startswith(b"data:"):
                        count += 1
                    elif event.strip():
                        tally.errors["unexpected event"] += 1
                stream.events(count, now)
    except TimeoutError:
        tally.errors["timeout"] += 1
    except aiohttp.ClientError as exc:
        tally.errors[type(exc).__name__] += 1
    except OSError as exc:
        tally.errors[f"OSError {exc.errno}"] += 1
    finally:
        stream.end()


# --- the run ------------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p99/max in milliseconds (nearest rank), None for no values."""
    if not values:
        return {"p50": None, "p99": None, "max": None, "count": 0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[index] * 1000

    return {"p50": rank(50), "p99": rank(99), "max": ordered[-1] * 1000, "count": len(ordered)}


async def delayed(delay: float, coroutine: object) -> None:
    if delay:
        await asyncio.sleep(delay)
    await coroutine  # type: ignore[misc]


def chunk_plan(args: argparse.Namespace) -> list[tuple[float, int]]:
    """(start delay, chunk count) per stream: starts spread evenly over the ramp; with
    --end-together, earlier streams get more chunks so that every stream ends at about the
    same time and all of them are open together for the last `chunks` intervals."""
    interval = args.interval_ms / 1000
    plan = []
    for i in range(args.n):
        delay = i * args.ramp / args.n
        extra = int((args.ramp - delay) / interval) if args.end_together else 0
        plan.append((delay, args.chunks + extra))
    return plan


async def run(args: argparse.Namespace) -> dict[str, object]:
    base = {"Authorization": "Bearer k", "Content-Type": "application/json"}
    plan = chunk_plan(args)
    longest = max(chunks for _, chunks in plan)
    deadline = args.timeout or longest * args.interval_ms / 1000 + 60
    headers_for: dict[int, dict[str, str]] = {}
    targets: dict[int, tuple[str, int, bytes]] = {}
    for _, chunks in plan:
        if chunks not in headers_for:
            headers = {
                **base,
                "x-bench-chunks": str(chunks),
                "x-bench-interval-ms": f"{args.interval_ms:g}",
            }
            headers_for[chunks] = headers
            targets[chunks] = raw_target(args.url, headers)
    tallies = []
    begun = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        skip_auto_headers=("User-Agent",),
    ) as session:
        for _ in range(args.rounds):
            tally = Tally(n=args.n, t0=time.perf_counter())

            def one(chunks: int, tally: Tally = tally) -> object:
                if args.client == "raw":
                    return raw_stream(targets[chunks], tally, deadline)
                return aiohttp_stream(session, args.url, headers_for[chunks], tally, deadline)

            await asyncio.gather(*(delayed(delay, one(chunks)) for delay, chunks in plan))
            tallies.append(tally)
    elapsed = time.perf_counter() - begun
    expected = sum(chunks for _, chunks in plan) * args.rounds
    received = sum(t.chunks for t in tallies)
    errors: Counter[str] = Counter()
    for t in tallies:
        errors.update(t.errors)
    return {
        "client": args.client,
        "streams": args.n,
        "rounds": args.rounds,
        "chunks_per_stream": args.chunks,
        "interval_ms": args.interval_ms,
        "ramp_s": args.ramp,
        "end_together": args.end_together,
        "expected_chunks": expected,
        "received_chunks": received,
        "lost": expected - received,
        "prompt_filter_events": sum(t.prompt_filters for t in tallies),
        "completed": sum(t.completed for t in tallies),
        "all_open": all(t.all_open_reported for t in tallies),
        "peak_open": max(t.peak_open for t in tallies),
        "errors": dict(errors),
        "ttfc_ms": percentiles([x for t in tallies for x in t.ttfc]),
        "gap_ms": percentiles([x for t in tallies for x in t.gaps]),
        "elapsed_s": round(elapsed, 3),
    }


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard == resource.RLIM_INFINITY else max(soft, min(hard, needed))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < needed:
        print(f"warning: fd limit below {needed}; some streams may fail", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description="Open N SSE streams at once and time them.")
    parser.add_argument("url", help="chat completions URL (gateway or direct upstream)")
    parser.add_argument("-n", type=int, default=1000, help="concurrent streams")
    parser.add_argument("--chunks", type=int, default=64, help="chat chunks per stream")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="gap between events")
    parser.add_argument("--rounds", type=int, default=1, help="repeat N streams this often")
    parser.add_argument("--ramp", type=float, default=0.0, help="spread starts over seconds")
    parser.add_argument(
        "--end-together", action="store_true", help="earlier starts get more chunks"
    )
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw")
    parser.add_argument("--timeout", type=float, default=0.0, help="per-stream limit, seconds")
    args = parser.parse_args()
    if args.n < 1 or args.chunks < 1 or args.rounds < 1:
        parser.error("-n, --chunks and --rounds must be at least 1")
    raise_fd_limit(args.n + 256)
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        summary = runner.run(run(args))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
