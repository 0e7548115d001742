"""A built-in Azure OpenAI emulator: the demo upstream and the fake Azure of the test suite.

It answers with Azure's wire format (bodies, SSE framing, headers, errors): the classic
deployment routes (chat, completions, embeddings, images, audio), the v1 surface
(`/openai/v1/…`), the Responses API, files, batches, fine-tuning jobs and vector stores,
realtime WebSockets, the ARM deployments listing, and a minimal api.openai.com. Tests script
faults and inspect traffic through `EmulatorState`.
"""

from .app import create_emulator_app, start_emulator
from .state import (
    EMULATOR_STATE,
    EmulatorState,
    Fault,
    RecordedRequest,
    UploadedFile,
    UploadSummary,
)

__all__ = [
    "EMULATOR_STATE",
    "EmulatorState",
    "Fault",
    "RecordedRequest",
    "UploadSummary",
    "UploadedFile",
    "create_emulator_app",
    "start_emulator",
]
