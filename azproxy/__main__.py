"""Command line: flags over environment over `.env` over defaults, then serve."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from dotenv import dotenv_values

from . import __version__
from .logbuffer import BatchingStreamHandler
from .logformat import LineFormatter
from .settings import ConfigError, Settings, load_settings

# Each flag stands for one environment variable; a given flag overrides it.
FLAGS = {
    "address": "AZURE_OPENAI_PROXY_ADDRESS",
    "mode": "AZURE_OPENAI_PROXY_MODE",
    "endpoint": "AZURE_OPENAI_ENDPOINT",
    "api_version": "AZURE_OPENAI_APIVERSION",
    "mapper": "AZURE_OPENAI_MODEL_MAPPER",
    "log_level": "AZURE_OPENAI_PROXY_LOG_LEVEL",
    "workers": "AZURE_OPENAI_PROXY_WORKERS",
}

# Older names still accepted; the canonical name wins within one source.
ALIASES = {"AZURE_OPENAI_API_VER": "AZURE_OPENAI_APIVERSION"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="azproxy", description="OpenAI-compatible gateway in front of Azure OpenAI."
    )
    add = parser.add_argument
    add("--address", help="listen host:port (AZURE_OPENAI_PROXY_ADDRESS, default 0.0.0.0:8080)")
    add("--mode", help="azure or openai (AZURE_OPENAI_PROXY_MODE, default azure)")
    add(
        "--endpoint",
        help="https://RESOURCE.openai.azure.com (AZURE_OPENAI_ENDPOINT; unset: built-in emulator)",
    )
    add(
        "--api-version",
        help="api-version for Azure calls (AZURE_OPENAI_APIVERSION, default 2024-10-21)",
    )
    add("--mapper", help="model=deployment pairs, comma-separated (AZURE_OPENAI_MODEL_MAPPER)")
    add(
        "--env-file",
        default=None,
        help="file of VAR=value lines to read (default: ./.env if present)",
    )
    add(
        "--log-level",
        help="DEBUG, INFO, WARNING, ERROR (AZURE_OPENAI_PROXY_LOG_LEVEL, default INFO)",
    )
    add("--workers", help="processes sharing the port (AZURE_OPENAI_PROXY_WORKERS, default 1)")
    add("--version", action="version", version=f"azproxy {__version__}")
    return parser.parse_args(argv)


def merged_environment(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """Defaults < `.env` file < environment < flags, as one mapping."""
    env_file = args.env_file or ".env"
    if args.env_file and not os.path.isfile(env_file):
        raise ConfigError(f"--env-file {env_file!r} does not exist")
    from_file = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    merged = _canonical(from_file)
    merged.update(_canonical(environ))
    for flag, variable in FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            merged[variable] = value
    return merged


def _canonical(source: Mapping[str, str]) -> dict[str, str]:
    """One source's variables with aliases resolved, so a later source overrides them whole."""
    variables = dict(source)
    for alias, name in ALIASES.items():
        alias_value = variables.pop(alias, None)
        if alias_value is not None:
            variables.setdefault(name, alias_value)
    return variables


def configure(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Settings:
    """Settings from the command line and environment; `ConfigError` names a bad setting."""
    return load_settings(merged_environment(parse_args(argv), environ))


def configure_logging(level: str) -> None:
    """Batched lines on stderr, in `LINE_FORMAT`, at `level` and above."""
    handler = BatchingStreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # What the line format never shows is not gathered for every record either (the logging
    # HOWTO's "Optimization"): the caller's file and line, thread, process and process name.
    # With the access log on, that was ~1.7 µs of ~7 per line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def main(argv: Sequence[str] | None = None) -> None:
    try:
        settings = configure(argv, os.environ)
    except ConfigError as exc:
        sys.exit(f"azproxy: configuration error: {exc}")
    configure_logging(settings.log_level)
    from .server import serve, serve_workers

    if settings.workers > 1:
        sys.exit(serve_workers(settings))
    serve(settings)


if __name__ == "__main__":
    main()
