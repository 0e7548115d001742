"""Resource-level JSON collections: batches (classic), fine-tuning jobs (both surfaces) and
vector stores (v1). Objects are minimal but complete OpenAI shapes, kept on the state by id;
nothing ever runs, so a batch stays `validating` and a job `pending` until cancelled.
"""

from __future__ import annotations

import secrets
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from .checks import answer, surface_rejection
from .delivery import Payload, json_response
from .errors import JSON, invalid_request, missing_property
from .handlers import read_object, unparsable
from .state import EMULATOR_STATE, EmulatorState

_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Collection:
    """One kind of object: how it is named, stored, built and listed."""

    operation: str  # the route suffix, also naming the operation in a 429
    noun: str  # for "No … found with id" messages
    store: Callable[[EmulatorState], dict[str, JSON]]
    build: Callable[[JSON], JSON | web.Response]
    cursor: bool  # lists carry first_id/last_id


def _required(body: JSON, *names: str) -> web.Response | None:
    for name in names:
        if not isinstance(body.get(name), str) or not body[name]:
            return json_response(missing_property(name), 400)
    return None


def _batch(body: JSON) -> JSON | web.Response:
    missing = _required(body, "input_file_id", "endpoint", "completion_window")
    if missing is not None:
        return missing
    now = int(time.time())
    return {
        "id": f"batch_{uuid.uuid4()}",
        "object": "batch",
        "endpoint": body["endpoint"],
        "errors": None,
        "input_file_id": body["input_file_id"],
        "completion_window": body["completion_window"],
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": now,
        "in_progress_at": None,
        "expires_at": now + 24 * 3600,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": body.get("metadata"),
    }


def _job(body: JSON) -> JSON | web.Response:
    missing = _required(body, "model", "training_file")
    if missing is not None:
        return missing
    given = body.get("hyperparameters")
    auto = {"batch_size": "auto", "learning_rate_multiplier": "auto", "n_epochs": "auto"}
    hyperparameters = {**auto, **(given if isinstance(given, dict) else {})}
    seed = body.get("seed")
    return {
        "id": f"ftjob-{secrets.token_hex(16)}",
        "object": "fine_tuning.job",
        "created_at": int(time.time()),
        "error": None,
        "fine_tuned_model": None,
        "finished_at": None,
        "hyperparameters": hyperparameters,
        "model": body["model"],
        "organization_id": "",
        "result_files": [],
        "seed": seed if isinstance(seed, int) else secrets.randbelow(2**31),
        "status": "pending",
        "trained_tokens": None,
        "training_file": body["training_file"],
        "validation_file": body.get("validation_file"),
        "estimated_finish": None,
        "integrations": None,
        "metadata": body.get("metadata"),
        "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
        "suffix": body.get("suffix"),
    }


def _vector_store(body: JSON) -> JSON | web.Response:
    name = body.get("name")
    file_ids = body.get("file_ids") or []
    if not isinstance(file_ids, list) or not all(isinstance(f, str) for f in file_ids):
        return json_response(
            invalid_request("Invalid 'file_ids': expected an array.", "file_ids"), 400
        )
    now = int(time.time())
    return {
        "id": "vs_" + "".join(secrets.choice(_ALNUM) for _ in range(24)),
        "object": "vector_store",
        "created_at": now,
        "name": name if isinstance(name, str) else "",
        "usage_bytes": 0,
        "file_counts": {
            "in_progress": 0,
            "completed": len(file_ids),
            "failed": 0,
            "cancelled": 0,
            "total": len(file_ids),
        },
        "status": "completed",
        "expires_after": body.get("expires_after"),
        "expires_at": None,
        "last_active_at": now,
        "metadata": body.get("metadata") or {},
    }


BATCHES = Collection("batches", "batch", lambda s: s.batches, _batch, cursor=True)
JOBS = Collection("fine_tuning/jobs", "fine-tuning job", lambda s: s.fine_tuning_jobs, _job, False)
VECTOR_STORES = Collection(
    "vector_stores", "vector store", lambda s: s.vector_stores, _vector_store, cursor=True
)


def _payload(body: JSON) -> Payload:
    return Payload(orjson.dumps(body))


def creator(kind: Collection) -> Handler:
    """`POST …/{collection}`."""

    async def create(request: web.Request) -> web.StreamResponse:
        state = request.app[EMULATOR_STATE]
        rejection = surface_rejection(request, state)
        if rejection is not None:
            return rejection
        body = await read_object(request)
        if body is None:
            return unparsable()
        built = kind.build(body)
        if isinstance(built, web.Response):
            return built

        def keep() -> None:
            kind.store(state)[built["id"]] = built

        return await answer(request, kind.operation, _payload(built), keep)

    return create


def lister(kind: Collection) -> Handler:
    """`GET …/{collection}`: newest first."""

    async def list_all(request: web.Request) -> web.StreamResponse:
        state = request.app[EMULATOR_STATE]
        rejection = surface_rejection(request, state)
        if rejection is not None:
            return rejection
        data = list(reversed(kind.store(state).values()))
        body: JSON = {"object": "list", "data": data}
        if kind.cursor:
            body["first_id"] = data[0]["id"] if data else None
            body["last_id"] = data[-1]["id"] if data else None
        body["has_more"] = False
        return await answer(request, kind.operation, _payload(body))

    return list_all


def _found(kind: Collection, request: web.Request) -> JSON | web.Response:
    state = request.app[EMULATOR_STATE]
    rejection = surface_rejection(request, state)
    if rejection is not None:
        return rejection
    object_id = request.match_info["object_id"]
    found = kind.store(state).get(object_id)
    if found is None:
        message = f"No {kind.noun} found with id '{object_id}'."
        return json_response(invalid_request(message, "id"), 404)
    return found


def getter(kind: Collection) -> Handler:
    """`GET …/{collection}/{id}`."""

    async def get(request: web.Request) -> web.StreamResponse:
        found = _found(kind, request)
        if isinstance(found, web.Response):
            return found
        return await answer(request, kind.operation, _payload(found))

    return get


def deleter(kind: Collection, deleted_object: str) -> Handler:
    """`DELETE …/{collection}/{id}`."""

    async def delete(request: web.Request) -> web.StreamResponse:
        found = _found(kind, request)
        if isinstance(found, web.Response):
            return found
        store = kind.store(request.app[EMULATOR_STATE])
        body = {"id": found["id"], "object": deleted_object, "deleted": True}
        return await answer(
            request, kind.operation, _payload(body), lambda: store.pop(found["id"], None)
        )

    return delete


def canceller(kind: Collection, active: tuple[str, ...], status: str, stamp: str | None) -> Handler:
    """`POST …/{collection}/{id}/cancel`: an `active` object moves to `status` (`stamp` set)."""

    async def cancel(request: web.Request) -> web.StreamResponse:
        found = _found(kind, request)
        if isinstance(found, web.Response):
            return found
        updated = dict(found)
        if found["status"] in active:
            updated["status"] = status
            if stamp is not None:
                updated[stamp] = int(time.time())

        def keep() -> None:
            found.update(updated)

        return await answer(request, kind.operation, _payload(updated), keep)

    return cancel


BATCH_ACTIVE = ("validating", "in_progress", "finalizing")
JOB_ACTIVE = ("pending", "validating_files", "queued", "running")
