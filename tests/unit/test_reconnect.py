"""The shared policy for a lost database (cityops/reconnect.py): the backoff stays bounded and
starts again after a success, a stop cuts a pause short, and a lost connection under a job
becomes our retryable error while other errors pass through unchanged."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from cityops.backoff import Backoff
from cityops.errors import SinkUnavailable
from cityops.reconnect import database_backoff, database_lost_is_retryable


def test_the_backoff_doubles_up_to_8_s_and_starts_again_after_a_success() -> None:
    backoff = database_backoff()
    assert [backoff.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_a_stop_cuts_the_pause_short() -> None:
    async def go() -> float:
        stop, backoff = asyncio.Event(), Backoff(initial_s=30.0, cap_s=30.0, jitter=False)
        asyncio.get_running_loop().call_later(0.05, stop.set)
        started = time.monotonic()
        await backoff.pause(stop)
        return time.monotonic() - started

    assert asyncio.run(go()) < 5


def test_a_lost_connection_under_a_job_is_retryable_and_names_the_job() -> None:
    lost = "sync 7: the platform's database was lost"
    with pytest.raises(SinkUnavailable, match=lost) as got, database_lost_is_retryable("sync 7"):
        raise psycopg.OperationalError("server closed the connection unexpectedly")
    assert got.value.retryable
    with pytest.raises(psycopg.errors.UniqueViolation), database_lost_is_retryable("sync 7"):
        raise psycopg.errors.UniqueViolation("a bug, not a failover")
