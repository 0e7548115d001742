"""The command line: flags over environment over `.env` over defaults, and start-up errors."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from azproxy import __version__
from azproxy.__main__ import configure, configure_logging, main, merged_environment, parse_args
from azproxy.logbuffer import BatchingStreamHandler
from azproxy.logformat import LineFormatter
from azproxy.settings import ConfigError, Settings


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run from an empty directory with none of the gateway's variables set."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("AZURE_OPENAI_", "OPENAI_")):
            monkeypatch.delenv(name)


def write_env(path: Path, **variables: str) -> Path:
    path.write_text("".join(f"{name}={value}\n" for name, value in variables.items()))
    return path


# Arguments


def test_help_lists_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--address",
        "--mode",
        "--endpoint",
        "--api-version",
        "--mapper",
        "--env-file",
        "--log-level",
    ):
        assert flag in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"azproxy {__version__}"


def test_unknown_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["--adress", "x"])
    assert info.value.code == 2
    assert "--adress" in capsys.readouterr().err


def test_parse_args_without_flags() -> None:
    args = parse_args([])
    assert args.address is None
    assert args.mode is None
    assert args.endpoint is None
    assert args.api_version is None
    assert args.mapper is None
    assert args.env_file is None
    assert args.log_level is None


# Merging sources


def test_flags_become_variables() -> None:
    args = parse_args(
        [
            "--address=:9000",
            "--mode=openai",
            "--endpoint=https://flag.example.com",
            "--api-version=2024-02-01",
            "--mapper=gpt-4=gpt4-prod",
            "--log-level=debug",
        ]
    )
    assert merged_environment(args, {}) == {
        "AZURE_OPENAI_PROXY_ADDRESS": ":9000",
        "AZURE_OPENAI_PROXY_MODE": "openai",
        "AZURE_OPENAI_ENDPOINT": "https://flag.example.com",
        "AZURE_OPENAI_APIVERSION": "2024-02-01",
        "AZURE_OPENAI_MODEL_MAPPER": "gpt-4=gpt4-prod",
        "AZURE_OPENAI_PROXY_LOG_LEVEL": "debug",
    }


def test_nothing_configured_gives_the_defaults() -> None:
    assert configure([], {}) == Settings()


def test_precedence_flags_over_environment_over_env_file(tmp_path: Path) -> None:
    env_file = write_env(
        tmp_path / "custom.env",
        AZURE_OPENAI_PROXY_ADDRESS="127.0.0.1:1111",
        AZURE_OPENAI_PROXY_MODE="openai",
        AZURE_OPENAI_ENDPOINT="https://file.example.com",
        AZURE_OPENAI_PROXY_LOG_LEVEL="ERROR",
    )
    environ = {
        "AZURE_OPENAI_PROXY_ADDRESS": "127.0.0.1:2222",
        "AZURE_OPENAI_ENDPOINT": "https://environ.example.com",
    }
    settings = configure(["--env-file", str(env_file), "--address", "127.0.0.1:3333"], environ)
    assert settings.port == 3333  # flag over environment and file
    assert settings.endpoint == "https://environ.example.com"  # environment over file
    assert settings.mode == "openai"  # file over default
    assert settings.log_level == "ERROR"  # file over default
    assert settings.api_version == "2024-10-21"  # default


@pytest.mark.parametrize(
    ("flags", "environ", "file", "expected"),
    [
        ([], {}, {}, "2024-10-21"),
        ([], {}, {"AZURE_OPENAI_APIVERSION": "file"}, "file"),
        (
            [],
            {"AZURE_OPENAI_APIVERSION": "environ"},
            {"AZURE_OPENAI_APIVERSION": "file"},
            "environ",
        ),
        (["--api-version", "flag"], {"AZURE_OPENAI_APIVERSION": "environ"}, {}, "flag"),
        (["--api-version", "flag"], {"AZURE_OPENAI_API_VER": "environ"}, {}, "flag"),
        ([], {"AZURE_OPENAI_API_VER": "environ"}, {}, "environ"),
        # The legacy alias in the environment still outranks the .env file.
        ([], {"AZURE_OPENAI_API_VER": "environ"}, {"AZURE_OPENAI_APIVERSION": "file"}, "environ"),
    ],
    ids=[
        "default",
        "file",
        "environ-over-file",
        "flag-over-environ",
        "flag-over-alias",
        "alias",
        "alias-in-environ-over-file",
    ],
)
def test_api_version_precedence(
    tmp_path: Path,
    flags: list[str],
    environ: dict[str, str],
    file: dict[str, str],
    expected: str,
) -> None:
    env_file = write_env(tmp_path / "vars.env", **file)
    settings = configure(["--env-file", str(env_file), *flags], environ)
    assert settings.api_version == expected


def test_dot_env_in_the_working_directory_is_read(tmp_path: Path) -> None:
    write_env(tmp_path / ".env", AZURE_OPENAI_PROXY_MODE="openai")
    assert configure([], {}).mode == "openai"


def test_env_file_flag_replaces_the_dot_env(tmp_path: Path) -> None:
    write_env(tmp_path / ".env", AZURE_OPENAI_PROXY_MODE="openai", AZURE_OPENAI_TOKEN="dot")
    other = write_env(tmp_path / "other.env", AZURE_OPENAI_TOKEN="other")
    settings = configure(["--env-file", str(other)], {})
    assert settings.token == "other"
    assert settings.mode == "azure"


def test_env_file_supports_quotes_and_comments(tmp_path: Path) -> None:
    env_file = tmp_path / "quoted.env"
    env_file.write_text(
        "# the mapping for staging\n"
        'AZURE_OPENAI_MODEL_MAPPER="gpt-4=gpt4-prod, o1=o1-dep"\n'
        "export AZURE_OPENAI_PROXY_ADDRESS=':9000'\n"
        "AZURE_OPENAI_TOKEN\n"
    )
    settings = configure(["--env-file", str(env_file)], {})
    assert settings.model_mapping["gpt-4"] == "gpt4-prod"
    assert settings.model_mapping["o1"] == "o1-dep"
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)
    assert settings.token is None


def test_missing_env_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.env"
    with pytest.raises(ConfigError, match="--env-file") as info:
        configure(["--env-file", str(missing)], {})
    assert str(missing) in str(info.value)


def test_env_file_that_is_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--env-file"):
        configure(["--env-file", str(tmp_path)], {})


def test_bad_value_in_env_file_names_the_variable(tmp_path: Path) -> None:
    env_file = write_env(tmp_path / "bad.env", AZURE_OPENAI_CONNECT_TIMEOUT="soon")
    with pytest.raises(ConfigError, match=r"^AZURE_OPENAI_CONNECT_TIMEOUT='soon' "):
        configure(["--env-file", str(env_file)], {})


# main


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--address", "nope"], "AZURE_OPENAI_PROXY_ADDRESS='nope'"),
        (["--mode", "aws"], "AZURE_OPENAI_PROXY_MODE='aws'"),
        (["--endpoint", "ftp://x"], "AZURE_OPENAI_ENDPOINT='ftp://x'"),
        (["--mapper", "gpt-4"], "AZURE_OPENAI_MODEL_MAPPER"),
        (["--mapper", "gpt-4\nx"], "AZURE_OPENAI_MODEL_MAPPER"),
        (["--log-level", "loud"], "AZURE_OPENAI_PROXY_LOG_LEVEL='loud'"),
        (["--env-file", "missing.env"], "--env-file 'missing.env'"),
    ],
)
def test_main_exits_with_one_line_naming_the_setting(argv: list[str], named: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    message = info.value.code
    assert isinstance(message, str)
    assert message.startswith("azproxy: configuration error: ")
    assert named in message
    assert "\n" not in message


def test_main_reports_a_bad_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_PROXY_MAX_BODY", "huge")
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == (
        "azproxy: configuration error: AZURE_OPENAI_PROXY_MAX_BODY='huge' is not an integer"
    )


def test_main_flag_overrides_a_bad_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_PROXY_ADDRESS", "nope")
    monkeypatch.setenv("AZURE_OPENAI_PROXY_MODE", "aws")
    with pytest.raises(SystemExit) as info:
        main(["--address", ":9000"])
    assert isinstance(info.value.code, str)
    assert "AZURE_OPENAI_PROXY_MODE='aws'" in info.value.code
    assert "AZURE_OPENAI_PROXY_ADDRESS" not in info.value.code


@pytest.fixture
def restored_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    for flag in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, flag, getattr(logging, flag))


def test_log_lines_are_batched_in_the_line_format_without_caller_details(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("WARNING")
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, BatchingStreamHandler)
    assert isinstance(handler.formatter, LineFormatter)
    assert logging.getLogger().level == logging.WARNING
    record = logging.getLogger("azproxy").makeRecord(
        "azproxy", logging.WARNING, "f.py", 1, "upstream %s slow", ("x",), None
    )
    assert (record.threadName, record.process, record.processName) == (None, None, None)
    seen: list[logging.LogRecord] = []
    catcher = logging.Handler()
    catcher.emit = seen.append  # type: ignore[method-assign, assignment]
    logger = logging.getLogger("azproxy")
    logger.addHandler(catcher)
    try:
        logger.warning("upstream %s slow", "x")
    finally:
        logger.removeHandler(catcher)
    assert capsys.readouterr().err.endswith(" WARNING azproxy: upstream x slow\n")
    assert (seen[0].pathname, seen[0].lineno) == ("(unknown file)", 0)  # no stack walk
