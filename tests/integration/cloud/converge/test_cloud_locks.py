"""The per-name advisory locks on the real PostgreSQL (no cloud needed)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from cityops.errors import Conflict
from cloud_control.locks import lock_key, resources_locked
from tests.helpers import wait_for


def _hold(database_url: str, key: str) -> psycopg.Connection:
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
    return conn


def test_a_held_name_waits_then_proceeds_and_a_stuck_one_fails_naming_it(
        database_url: str) -> None:
    key = lock_key("lab", "p1", "server", "web-1")
    holder = _hold(database_url, key)
    waited: list[str] = []
    entered = threading.Event()

    def second() -> None:
        with resources_locked(database_url, [key], waited.append, wait_limit_s=30):
            entered.set()

    thread = threading.Thread(target=second)
    thread.start()
    wait_for(lambda: waited == [key], timeout_s=10, what="the second job to wait")
    assert not entered.is_set(), "the second job ran while the first held the name"
    holder.close()  # a killed worker's connection: its lock goes with it
    thread.join(timeout=10)
    assert entered.is_set()

    stuck = _hold(database_url, key)
    try:
        with pytest.raises(Conflict, match="another job has held cloud:lab:p1:server:web-1"), \
                resources_locked(database_url, [key], wait_limit_s=0.2):
            pass
    finally:
        stuck.close()
    # other names, and other clouds' same names, never wait
    with resources_locked(database_url, [lock_key("other", "p1", "server", "web-1"),
                                         lock_key("lab", "p1", "volume", "web-1")]):
        pass
