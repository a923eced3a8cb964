"""Small test utilities: free ports and polling with a deadline (never fixed sleeps)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from cityops.running import cancel_until_done

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], T], timeout_s: float = 20.0, interval_s: float = 0.05,
             what: str = "condition") -> T:
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as err:
            last_error = err
        time.sleep(interval_s)
    raise AssertionError(
        f"timed out after {timeout_s}s waiting for {what}; last error: {last_error}"
    )


async def await_for(check: Callable[[], Awaitable[T]], timeout_s: float = 20.0,
                    interval_s: float = 0.05, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = await check()
            if result:
                return result
        except Exception as err:
            last_error = err
        await asyncio.sleep(interval_s)
    raise AssertionError(
        f"timed out after {timeout_s}s waiting for {what}; last error: {last_error}"
    )


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


async def stop_task(task: asyncio.Task, timeout_s: float = 20.0) -> None:
    """Cancel a task and wait for it to end, cancelling again while it runs on (Python 3.11's
    wait_for, inside pymodbus and asyncua, can drop a cancel: cancel_until_done). An error the
    task ended with is raised here, as `await task` would."""
    await asyncio.wait_for(cancel_until_done([task], every_s=0.5), timeout_s)
    if not task.cancelled() and task.exception() is not None:
        raise task.exception()
