"""The idle watchdog: fires once after silence, never after its block has ended."""

from __future__ import annotations

import asyncio

from azproxy.watchdog import IdleWatchdog


async def test_fires_once_when_nothing_arrives() -> None:
    fired = asyncio.Event()
    calls: list[None] = []

    def on_idle() -> None:
        calls.append(None)
        fired.set()

    with IdleWatchdog(0.01, on_idle) as watchdog:
        await asyncio.wait_for(fired.wait(), 5)
        assert watchdog.fired
    assert calls == [None]


async def test_touch_rearms_instead_of_firing() -> None:
    fired = asyncio.Event()
    with IdleWatchdog(0.05, fired.set) as watchdog:
        loop = asyncio.get_running_loop()
        # Touch on every loop turn for a while longer than the idle time: it must not fire.
        end = loop.time() + 0.2
        while loop.time() < end:
            watchdog.touch()
            await asyncio.sleep(0)
        assert not watchdog.fired
        await asyncio.wait_for(fired.wait(), 5)  # and once the touching stops, it does


async def test_does_not_fire_after_the_block() -> None:
    fired = asyncio.Event()
    with IdleWatchdog(0.01, fired.set):
        pass
    # Wait well past the idle time: a timer left armed would have fired by then.
    await asyncio.sleep(0.05)
    assert not fired.is_set()
