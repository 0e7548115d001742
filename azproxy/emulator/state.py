"""What the emulator remembers and what tests script: recorded requests, queued faults, counters.

One `EmulatorState` lives on the application under `EMULATOR_STATE`; tests keep a reference to
it to inspect traffic and queue faults while the server runs.
"""

from __future__ import annotations

import asyncio
import collections
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from aiohttp import web
from multidict import CIMultiDictProxy

FaultKind = Literal["status", "reset", "stall", "slow_first_byte", "hold"]
JSON = dict[str, Any]

# Streamed (multipart) bodies are recorded up to this many bytes by default: enough for any
# test that compares raw bytes, not so much that a 25 MB upload sits in the emulator's memory.
RECORD_LIMIT = 1 << 20


class UploadedFile(NamedTuple):
    """One file part of a multipart upload, as received: never held, only counted and hashed."""

    filename: str
    size: int
    sha256: str


@dataclass
class UploadSummary:
    """A multipart form as the emulator parsed it, part by part.

    `fields` holds the text parts, `files` the file parts (a repeated name, like `image[]`,
    keeps its last file here); `parts` lists every part in arrival order, repeats included.
    """

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    parts: list[tuple[str, str | UploadedFile]] = field(default_factory=list)


@dataclass
class RecordedRequest:
    """One request exactly as the emulator received it, recorded before any check."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDictProxy[str]
    body: bytes
    # Bytes received; larger than len(body) when a streamed body passed `record_limit`.
    body_size: int = 0
    # The parsed form, for a multipart request a handler read.
    upload: UploadSummary | None = None


@dataclass
class Fault:
    """One scripted misbehaviour, consumed by the next request that passes the checks.

    `status` answers with an error; `slow_first_byte` delays the response headers by `delay`;
    `reset`, `stall` and `hold` act after `after_chunks` SSE events (at once for a JSON reply):
    `reset` aborts the TCP connection, `stall` goes silent until the client leaves, `hold`
    pauses until `release` is set and then finishes normally.
    """

    kind: FaultKind
    status: int = 500
    retry_after: int = 6
    after_chunks: int = 0
    delay: float = 0.0
    release: asyncio.Event | None = None

    def __post_init__(self) -> None:
        # A hold without an event would be a stall in disguise; fail where the test is written.
        if self.kind == "hold" and self.release is None:
            raise ValueError("Fault(kind='hold') needs a release event")


@dataclass
class StoredFile:
    """An uploaded file: its API object and its content, spooled to disk past 1 MiB."""

    meta: JSON
    content: tempfile.SpooledTemporaryFile[bytes]


@dataclass
class StoredResponse:
    """A Responses API object and the input items it was created from."""

    body: JSON
    input_items: list[JSON]
    background: bool = False


class EmulatorState:
    """Configuration and observable history of one emulator instance."""

    def __init__(
        self,
        *,
        keys: Iterable[str] | None = None,
        deployments: Iterable[str] | None = None,
        chunk_interval: float = 0.0,
        reply: str | None = None,
        record_limit: int | None = RECORD_LIMIT,
    ) -> None:
        # None means "accept anything": the demo works with whatever key and deployment it gets.
        self.keys: frozenset[str] | None = None if keys is None else frozenset(keys)
        self.deployments: frozenset[str] | None = (
            None if deployments is None else frozenset(deployments)
        )
        self.chunk_interval = chunk_interval
        self.reply = reply
        self.requests: list[RecordedRequest] = []
        self.faults: collections.deque[Fault] = collections.deque()
        # asyncio.Event binds to a loop only on first wait (3.10+), so building it here is safe.
        self.aborted = asyncio.Event()
        self.aborted_streams = 0
        self.completed_streams = 0
        # Streamed bodies are recorded up to this many bytes (None: all of them).
        self.record_limit = record_limit
        self.last_upload: UploadSummary | None = None
        # Resource-level objects, by id: what the Files, Batches, Fine-tuning, Vector stores
        # and Responses APIs created (Azure keeps them per resource, so do we).
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, JSON] = {}
        self.fine_tuning_jobs: dict[str, JSON] = {}
        self.vector_stores: dict[str, JSON] = {}
        self.responses: dict[str, StoredResponse] = {}
        # Realtime: sessions opened, every client event received, a client's socket closing.
        self.realtime_sessions = 0
        self.realtime_events: list[JSON] = []
        self.realtime_closed = asyncio.Event()

    def add_fault(self, fault: Fault) -> None:
        """Queue `fault` behind any already queued."""
        self.faults.append(fault)

    def take_fault(self) -> Fault | None:
        """The next queued fault, removed from the queue, or None."""
        return self.faults.popleft() if self.faults else None

    def stream_aborted(self) -> None:
        """Note that a client left before its stream ended."""
        self.aborted_streams += 1
        self.aborted.set()

    def discard_files(self) -> None:
        """Forget every uploaded file, releasing its spooled content."""
        for stored in self.files.values():
            stored.content.close()
        self.files.clear()

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request; LookupError if none arrived yet."""
        if not self.requests:
            raise LookupError("the emulator has not received any request yet")
        return self.requests[-1]


EMULATOR_STATE = web.AppKey("emulator_state", EmulatorState)
