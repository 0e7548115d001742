"""The Files API, resource-level: `…/openai/v1/files…` and classic `…/openai/files…?api-version=`.

Uploads stream into a spooled temporary file (memory up to 1 MiB, then disk), so a large file
never sits whole in memory; `…/files/{id}/content` streams it back. The classic upload answers
201 with a `Location`, as Azure's spec has it; v1 answers 200, as OpenAI does.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import overload

import orjson
from aiohttp import web

from .checks import answer, surface_rejection
from .delivery import Payload, json_response
from .errors import JSON, invalid_request, invalid_value, missing_property
from .state import EMULATOR_STATE, StoredFile
from .uploads import CHUNK_SIZE, FormError, read_form

OPERATION = "files"
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
SPOOL_SIZE = 1 << 20

Spool = tempfile.SpooledTemporaryFile[bytes]


class SpoolChunks(Sequence[bytes]):
    """A spooled file as a sequence of chunks, each read from the file when it is sent."""

    def __init__(self, spool: Spool, size: int) -> None:
        self._spool = spool
        self._size = size

    def __len__(self) -> int:
        return -(-self._size // CHUNK_SIZE)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not 0 <= index < len(self):
            raise IndexError(index)
        # Seek and read with no await between: concurrent downloads cannot interleave here.
        self._spool.seek(index * CHUNK_SIZE)
        return self._spool.read(CHUNK_SIZE)


def _not_found(file_id: str) -> web.Response:
    return json_response(invalid_request(f"No such File object: {file_id}", "id"), 404)


def _expiry(fields: dict[str, str], created_at: int) -> int | web.Response | None:
    anchor = fields.get("expires_after[anchor]")
    seconds = fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        return json_response(invalid_value("expires_after.anchor", anchor, ("created_at",)), 400)
    if seconds is None or not seconds.isdigit():
        return json_response(missing_property("expires_after.seconds"), 400)
    return created_at + int(seconds)


def _meta(file_id: str, size: int, filename: str, purpose: str, created_at: int) -> JSON:
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": created_at,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
    }


async def upload_file(request: web.Request) -> web.StreamResponse:
    """`POST …/files`: multipart `file` and `purpose` (and optional `expires_after[…]`)."""
    state = request.app[EMULATOR_STATE]
    rejection = surface_rejection(request, state)
    if rejection is not None:
        return rejection
    spool: Spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_SIZE)  # noqa: SIM115
    kept = False

    def sink(name: str, filename: str) -> Callable[[bytes], object] | None:
        return spool.write if name == "file" else None

    try:
        try:
            form, _ = await read_form(request, sink)
        except FormError as exc:
            return json_response(invalid_request(str(exc)), 400)
        upload = form.files.get("file")
        purpose = form.fields.get("purpose")
        if upload is None:
            return json_response(missing_property("file"), 400)
        if purpose is None:
            return json_response(missing_property("purpose"), 400)
        if purpose not in PURPOSES:
            return json_response(invalid_value("purpose", purpose, PURPOSES), 400)
        created_at = int(time.time())
        expires_at = _expiry(form.fields, created_at)
        if isinstance(expires_at, web.Response):
            return expires_at
        file_id = f"file-{secrets.token_hex(16)}"
        meta = _meta(file_id, upload.size, upload.filename, purpose, created_at)
        if expires_at is not None:
            meta["expires_at"] = expires_at
        classic = not request.match_info.get("surface")
        location = request.url.with_path(f"{request.path}/{file_id}").with_query(request.query)
        headers = {"Location": str(location)}
        payload = Payload(
            orjson.dumps(meta), status=201 if classic else 200, headers=headers if classic else {}
        )

        def keep() -> None:
            nonlocal kept
            state.files[file_id] = StoredFile(meta, spool)
            kept = True

        return await answer(request, OPERATION, payload, keep)
    finally:
        if not kept:
            spool.close()


def _stored(request: web.Request) -> StoredFile | web.Response:
    state = request.app[EMULATOR_STATE]
    rejection = surface_rejection(request, state)
    if rejection is not None:
        return rejection
    file_id = request.match_info["file_id"]
    stored = state.files.get(file_id)
    return _not_found(file_id) if stored is None else stored


async def list_files(request: web.Request) -> web.StreamResponse:
    """`GET …/files` (`purpose` filters), newest first."""
    state = request.app[EMULATOR_STATE]
    rejection = surface_rejection(request, state)
    if rejection is not None:
        return rejection
    purpose = request.query.get("purpose")
    data = [f.meta for f in reversed(state.files.values()) if purpose in (None, f.meta["purpose"])]
    body = {"object": "list", "data": data, "has_more": False}
    return await answer(request, OPERATION, Payload(orjson.dumps(body)))


async def get_file(request: web.Request) -> web.StreamResponse:
    """`GET …/files/{id}`."""
    stored = _stored(request)
    if isinstance(stored, web.Response):
        return stored
    return await answer(request, OPERATION, Payload(orjson.dumps(stored.meta)))


async def delete_file(request: web.Request) -> web.StreamResponse:
    """`DELETE …/files/{id}`."""
    stored = _stored(request)
    if isinstance(stored, web.Response):
        return stored
    file_id = stored.meta["id"]
    files = request.app[EMULATOR_STATE].files

    def forget() -> None:
        files.pop(file_id, None)
        stored.content.close()

    deleted = {"id": file_id, "object": "file", "deleted": True}
    return await answer(request, OPERATION, Payload(orjson.dumps(deleted)), forget)


async def file_content(request: web.Request) -> web.StreamResponse:
    """`GET …/files/{id}/content`: the uploaded bytes, streamed in chunks."""
    stored = _stored(request)
    if isinstance(stored, web.Response):
        return stored
    chunks = SpoolChunks(stored.content, stored.meta["bytes"])
    payload = Payload(chunks, content_type="application/octet-stream")
    return await answer(request, OPERATION, payload)
