"""Audio: transcriptions and translations (multipart in), speech (JSON in, audio out).

The "transcript" names the uploaded file, its size and how long it plays, so a test can tell
the upload arrived whole. Speech is deterministic: the same input gives the same bytes, sent in
`SPEECH_CHUNK` pieces so a client sees them stream.
"""

from __future__ import annotations

import hashlib
import struct

from aiohttp import web

from .delivery import Payload, json_response
from .errors import JSON, invalid_value, missing_property
from .replies import encode
from .state import UploadSummary

TEXT_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
SPEECH_FORMATS = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
SPEECH_CHUNK = 16 * 1024
FAKE_AUDIO_SIZE = 64 * 1024
SAMPLE_RATE = 24_000  # OpenAI's speech output: 24 kHz, 16-bit, mono
SECONDS_PER_WORD = 0.25
COMPRESSED_BYTES_PER_SECOND = 16_000  # a 128 kbit/s guess for files that are not WAV


def wav_duration(head: bytes, size: int) -> float | None:
    """Seconds of audio in a canonical WAV file `size` bytes long, from its first bytes."""
    if len(head) < 44 or head[:4] != b"RIFF" or head[8:16] != b"WAVEfmt ":
        return None
    byte_rate = struct.unpack_from("<I", head, 28)[0]
    return max(size - 44, 0) / byte_rate if byte_rate else None


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02}:{minutes:02}:{rest // 1000:02}{separator}{rest % 1000:03}"


def _segment(text: str, duration: float) -> JSON:
    return {
        "id": 0,
        "seek": 0,
        "start": 0.0,
        "end": duration,
        "text": text,
        "tokens": list(range(50364, 50364 + len(text.split()))),
        "temperature": 0.0,
        "avg_logprob": -0.25,
        "compression_ratio": 1.0,
        "no_speech_prob": 0.01,
    }


def transcription(
    form: UploadSummary, heads: dict[str, bytes], task: str
) -> Payload | web.Response:
    """`audio/transcriptions` (task "transcribe") or `audio/translations` ("translate")."""
    upload = form.files.get("file")
    if upload is None:
        return json_response(missing_property("file"), 400)
    fmt = form.fields.get("response_format") or "json"
    if fmt not in TEXT_FORMATS:
        return json_response(invalid_value("response_format", fmt, TEXT_FORMATS), 400)
    noun = "transcription" if task == "transcribe" else "translation"
    text = f"Emulator {noun} of {upload.filename} ({upload.size} bytes)."
    duration = wav_duration(heads.get("file", b""), upload.size)
    if duration is None:
        duration = upload.size / COMPRESSED_BYTES_PER_SECOND
    duration = round(duration, 2)
    if fmt == "json":
        return Payload(encode({"text": text}, azure=False))
    if fmt == "verbose_json":
        language = "english" if task == "translate" else form.fields.get("language") or "english"
        body = {
            "task": task,
            "language": language,
            "duration": duration,
            "text": text,
            "segments": [_segment(text, duration)],
        }
        return Payload(encode(body, azure=False))
    if fmt == "srt":
        text = f"1\n{_timestamp(0, ',')} --> {_timestamp(duration, ',')}\n{text}\n\n"
    elif fmt == "vtt":
        text = f"WEBVTT\n\n{_timestamp(0, '.')} --> {_timestamp(duration, '.')}\n{text}\n\n"
    else:
        text += "\n"
    return Payload(text.encode(), content_type="text/plain; charset=utf-8")


def wav(seconds: float) -> bytes:
    """A valid 16-bit mono PCM WAV file of `seconds` of silence."""
    data = bytes(2 * round(SAMPLE_RATE * seconds))
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(data),
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        1,  # mono
        SAMPLE_RATE,
        SAMPLE_RATE * 2,
        2,
        16,
        b"data",
        len(data),
    )
    return header + data


def fake_audio(seed: str, size: int = FAKE_AUDIO_SIZE) -> bytes:
    """`size` deterministic bytes derived from `seed` (compressed formats are not synthesised)."""
    blocks: list[bytes] = []
    counter = 0
    while 32 * len(blocks) < size:
        blocks.append(hashlib.sha256(f"{counter}:{seed}".encode()).digest())
        counter += 1
    return b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"".join(blocks)[: size - 10]


def speech(body: JSON) -> Payload | web.Response:
    """`audio/speech`: audio of the input, streamed in chunks."""
    text = body.get("input")
    if not isinstance(text, str) or not text:
        return json_response(missing_property("input"), 400)
    voice = body.get("voice")
    if not isinstance(voice, str) or not voice:
        return json_response(missing_property("voice"), 400)
    fmt = body.get("response_format") or "mp3"
    if fmt not in SPEECH_FORMATS:
        return json_response(invalid_value("response_format", fmt, tuple(SPEECH_FORMATS)), 400)
    seconds = SECONDS_PER_WORD * max(1, len(text.split()))
    if fmt == "wav":
        audio = wav(seconds)
    elif fmt == "pcm":
        audio = wav(seconds)[44:]
    else:
        audio = fake_audio(f"{fmt}:{voice}:{text}")
    chunks = [audio[i : i + SPEECH_CHUNK] for i in range(0, len(audio), SPEECH_CHUNK)]
    return Payload(chunks, content_type=SPEECH_FORMATS[fmt])
