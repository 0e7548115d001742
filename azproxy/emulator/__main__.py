"""`python -m azproxy.emulator`: run the Azure emulator on its own."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Sequence

from .app import start_emulator
from .state import EmulatorState

logger = logging.getLogger("azproxy.emulator")


def _names(value: str) -> frozenset[str] | None:
    # An empty list means "not restricted", never "nothing allowed".
    names = frozenset(n.strip() for n in value.split(",") if n.strip())
    return names or None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; `--keys`/`--deployments` are comma-separated, absent = accept any."""
    parser = argparse.ArgumentParser(prog="python -m azproxy.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--keys", type=_names, default=None, help="accepted keys, k1,k2")
    parser.add_argument("--deployments", type=_names, default=None, help="existing deployments")
    parser.add_argument("--chunk-interval", type=float, default=0.0, metavar="SECONDS")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    state = EmulatorState(
        keys=args.keys, deployments=args.deployments, chunk_interval=args.chunk_interval
    )
    runner, url = await start_emulator(args.host, args.port, state)
    logger.info("azproxy Azure emulator listening on %s", url)
    try:
        await asyncio.Event().wait()  # until Ctrl+C cancels us
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse `argv`, serve until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
