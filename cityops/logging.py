"""Logging set-up, called only from entry points."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # pymodbus logs every failed connect attempt at ERROR; our drivers log transitions themselves
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
