"""Logging set-up, called only from entry points.

One level per process (CITYOPS_LOG_LEVEL) for our own loggers. Libraries log their inner
workings at INFO (asyncua a line per notification and request: about 630 MB a day for four
quiet OPC-UA sessions), so they are held at WARNING, or at the process level when that is
higher; CITYOPS_LOG_LEVELS sets single loggers for a diagnosis, e.g. '{"asyncua": "INFO"}'.
"""

from __future__ import annotations

import logging
import sys

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# third-party loggers: their warnings and errors still show, their chatter does not
LIBRARIES = (
    "asyncua", "paho", "httpx", "httpcore", "urllib3", "openstack", "keystoneauth",
    "stevedore", "ansible_runner", "uvicorn.access", "psycopg", "psycopg.pool", "asyncio",
    "websockets", "multipart", "aiosqlite",
)
LIBRARY_LEVEL = logging.WARNING
# pymodbus logs every failed connect attempt at ERROR; our drivers log transitions themselves
QUIET = {"pymodbus": logging.CRITICAL}


def level_number(name: str) -> int:
    """The number of a level name (any case); ValueError names the accepted ones."""
    if name.upper() not in LEVELS:
        raise ValueError(f"{name!r} is not a log level: use one of {', '.join(LEVELS)}")
    return logging.getLevelName(name.upper())


def configure_logging(level: str = "INFO", levels: dict[str, str] | None = None) -> None:
    own = level_number(level)
    logging.basicConfig(
        level=own,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger().setLevel(own)  # basicConfig leaves it alone when handlers exist
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(max(LIBRARY_LEVEL, own))
    for name, quiet in QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, own))
    for name, wanted in (levels or {}).items():
        logging.getLogger(name).setLevel(level_number(wanted))
