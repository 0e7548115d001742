"""Image generation (JSON) and image edits (multipart), shaped as Azure returns them.

Azure annotates every image with `content_filter_results` and, per image too, with
`prompt_filter_results` (an object here, unlike chat's list), as in the 2024-10-21 spec example.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
import uuid
import zlib

from aiohttp import web

from . import replies
from .delivery import Payload, json_response
from .errors import JSON, invalid_value, missing_property
from .state import UploadedFile, UploadSummary

RESPONSE_FORMATS = ("url", "b64_json")
IMAGE_URL = "https://emulator.invalid/img/{id}.png"
PNG_SIDE = 8


def png(seed: str) -> bytes:
    """A valid 8x8 RGB PNG whose single colour is derived from `seed`."""
    colour = hashlib.sha256(seed.encode()).digest()[:3]
    rows = b"".join(b"\x00" + colour * PNG_SIDE for _ in range(PNG_SIDE))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", PNG_SIDE, PNG_SIDE, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _image_filter() -> JSON:
    return {
        c: {"filtered": False, "severity": "safe"}
        for c in ("hate", "self_harm", "sexual", "violence")
    }


def _prompt_filter() -> JSON:
    results = _image_filter()
    results["jailbreak"] = {"filtered": False, "detected": False}
    results["profanity"] = {"filtered": False, "detected": False}
    return dict(sorted(results.items()))


def _count(value: object) -> int | None:
    # n: 1 to 10 images; a form field arrives as text.
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and 1 <= value <= 10 else None


def generation(body: JSON) -> Payload | web.Response:
    """`images/generations`: `url` images by default, `b64_json` when asked."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return json_response(missing_property("prompt"), 400)
    fmt = body.get("response_format") or "url"
    if fmt not in RESPONSE_FORMATS:
        return json_response(invalid_value("response_format", fmt, RESPONSE_FORMATS), 400)
    count = _count(body.get("n", 1))
    if count is None:
        return json_response(invalid_value("n", body.get("n"), ("1", "…", "10")), 400)
    data = []
    for index in range(count):
        image: JSON = (
            {"b64_json": base64.b64encode(png(f"{prompt}#{index}")).decode()}
            if fmt == "b64_json"
            else {"url": IMAGE_URL.format(id=uuid.uuid4().hex)}
        )
        image["revised_prompt"] = f"Emulator rendering of: {prompt}"
        image["content_filter_results"] = _image_filter()
        image["prompt_filter_results"] = _prompt_filter()
        data.append(image)
    return Payload(replies.encode({"created": int(time.time()), "data": data}, azure=False))


def edit(form: UploadSummary) -> Payload | web.Response:
    """`images/edits` (gpt-image-1): one `image` or several `image[]` parts and a `prompt`."""
    images = [
        f for name, f in form.parts if name in ("image", "image[]") and isinstance(f, UploadedFile)
    ]
    if not images:
        return json_response(missing_property("image"), 400)
    prompt = form.fields.get("prompt")
    if not prompt:
        return json_response(missing_property("prompt"), 400)
    count = _count(form.fields.get("n", "1"))
    if count is None:
        return json_response(invalid_value("n", form.fields.get("n"), ("1", "…", "10")), 400)
    seed = prompt + "".join(f.sha256 for f in images)
    data = [
        {
            "b64_json": base64.b64encode(png(f"{seed}#{index}")).decode(),
            "content_filter_results": _image_filter(),
            "prompt_filter_results": _prompt_filter(),
        }
        for index in range(count)
    ]
    text_tokens = len(prompt.split())
    image_tokens = 65 * len(images)
    usage = {
        "input_tokens": text_tokens + image_tokens,
        "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": text_tokens},
        "output_tokens": 272 * count,
        "total_tokens": text_tokens + image_tokens + 272 * count,
    }
    body = {"created": int(time.time()), "data": data, "usage": usage}
    return Payload(replies.encode(body, azure=False))
