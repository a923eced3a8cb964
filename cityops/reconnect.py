"""Living through a lost database (kill -9 of the primary, a Patroni failover): what counts as
"the database went away", and the bounded backoff every long-running worker waits between
attempts to get it back. Below every package (like running.py), so the workers of
datafoundation/, cloud_control/, cityevents/, notifications/ and indicators/ share one policy:
1, 2, 4 then 8 s between attempts, back to 1 s once an attempt got going. A failover takes
10-15 s here (docs/operations.md), so a worker is back within a few seconds of the new
primary, and never waits longer than 8 s for it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import psycopg

from cityops.backoff import Backoff
from cityops.errors import SinkUnavailable

# a connection lost under a query (OperationalError: "server closed the connection
# unexpectedly", "the connection is closed") or refused while no member is primary yet
DATABASE_LOST: tuple[type[Exception], ...] = (psycopg.OperationalError, psycopg.InterfaceError)


def database_backoff() -> Backoff:
    """The pause before the next attempt: 1, 2, 4, 8, 8... s; `reset` once one worked."""
    return Backoff(initial_s=1.0, cap_s=8.0, jitter=False)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT/SIGTERM: the worker finishes what it runs, then returns."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


@contextlib.contextmanager
def database_lost_is_retryable(what: str) -> Iterator[None]:
    """A connection to the platform's database lost mid-job as our retryable error: the job
    is queued again (the task's RetryStrategy names SinkUnavailable), not failed."""
    try:
        yield
    except DATABASE_LOST as err:
        raise SinkUnavailable(f"{what}: the platform's database was lost "
                              f"({type(err).__name__}); retried") from err
