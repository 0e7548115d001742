"""A built-in Azure OpenAI emulator: the demo upstream and the fake Azure of the test suite.

It answers Azure's classic deployment routes (and a minimal api.openai.com) with Azure's wire
format: bodies, SSE framing, headers, errors; tests script faults through `EmulatorState`.
"""

from .app import create_emulator_app, start_emulator
from .state import EMULATOR_STATE, EmulatorState, Fault, RecordedRequest

__all__ = [
    "EMULATOR_STATE",
    "EmulatorState",
    "Fault",
    "RecordedRequest",
    "create_emulator_app",
    "start_emulator",
]
