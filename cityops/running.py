"""Running a command's work: settings loaded with logging configured, and a coroutine run
until done or until SIGINT/SIGTERM. Below every package, so their commands need not import the
CLI that registers them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine, Iterable
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


async def cancel_until_done(tasks: Iterable[asyncio.Task], every_s: float = 1.0) -> None:
    """Cancel the tasks and wait for them, cancelling again every every_s those that run on.
    Python 3.11's asyncio.wait_for (inside pymodbus, asyncua) returns the answer and swallows
    a cancel that arrives with it, so one cancel can leave a device polling forever; a stop
    of the 240-meter bench hung on it."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=every_s)
        for task in done:  # retrieved: an error on the way out is not logged as unhandled
            if not task.cancelled():
                task.exception()
