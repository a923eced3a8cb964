"""Log levels: one setting per process, libraries held at WARNING (issue #13 item 6)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from cityops.errors import ConfigError
from cityops.logging import LIBRARIES, configure_logging
from cityops.settings import load_settings

NAMES = ["", "edge_agents", *LIBRARIES, "pymodbus"]


@pytest.fixture(autouse=True)
def _restore_levels() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in NAMES}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_libraries_log_warnings_only_unless_asked() -> None:
    configure_logging("info")
    assert logging.getLogger("edge_agents.devices").getEffectiveLevel() == logging.INFO
    for name in ("asyncua", "asyncua.client.ua_client", "paho.mqtt", "httpx", "uvicorn.access"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
    assert logging.getLogger("pymodbus").getEffectiveLevel() == logging.CRITICAL
    configure_logging("ERROR", {"asyncua": "debug"})
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.ERROR  # never below ours
    assert logging.getLogger("asyncua.client").getEffectiveLevel() == logging.DEBUG


def test_an_unknown_level_fails_at_start_naming_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("CITYOPS_ENV_FILE", "/nonexistent")
    monkeypatch.setenv("CITYOPS_LOG_LEVEL", "loud")
    with pytest.raises(ConfigError, match=r"CITYOPS_LOG_LEVEL: .*'loud' is not a log level"):
        load_settings()
    monkeypatch.setenv("CITYOPS_LOG_LEVEL", "warning")
    monkeypatch.setenv("CITYOPS_LOG_LEVELS", '{"asyncua": "chatty"}')
    with pytest.raises(ConfigError, match=r"CITYOPS_LOG_LEVELS: .*'chatty'"):
        load_settings()
    monkeypatch.setenv("CITYOPS_LOG_LEVELS", '{"asyncua": "info"}')
    settings = load_settings()
    assert (settings.log_level, settings.log_levels) == ("WARNING", {"asyncua": "INFO"})
