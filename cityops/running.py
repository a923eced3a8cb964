"""Running a command's work: settings loaded with logging configured, and a coroutine run
until done or until SIGINT/SIGTERM. Below every package, so their commands need not import the
CLI that registers them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any


def cli_settings():
    from cityops.logging import configure_logging
    from cityops.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_levels)
    return settings


def run_async(main: Coroutine[Any, Any, None]) -> None:
    """Run until done or until SIGINT/SIGTERM, then cancel cleanly."""

    async def runner() -> None:
        task = asyncio.create_task(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(runner())
