"""`cityops sync worker` keeps one binlog follower running per enabled cdc sync: each in a
thread of its own, restarted after a failure (with a growing pause), stopped when its sync is
disabled or removed. Several workers may run: a follower takes an advisory lock per sync
(cdc.LOCK_SPACE), so exactly one of them follows each sync, and another takes over when that
worker dies (its lock goes with its connection)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

import psycopg

log = logging.getLogger(__name__)
CHECK_S = 5.0  # how often the cdc syncs are looked up and dead followers restarted
MAX_PAUSE_S = 60.0
# between binlog reads when the log is quiet: each read is a new replication connection, so a
# worker following several syncs is not reconnecting ten times a second to each (latency
# stays well under the 5 s target: docs/data-foundation.md)
IDLE_S = 0.5


@dataclass
class _Follower:
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    failures: int = 0
    not_before: float = 0.0


def cdc_syncs(database_url: str) -> set[int]:
    with psycopg.connect(database_url) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM syncs WHERE mode = 'cdc' AND "
                                           "enabled AND flagged IS NULL")}


def _run(database_url: str, secret_key: str, sync_id: int, state: _Follower) -> None:
    from datafoundation.cdc import follow

    try:
        if follow(database_url, secret_key, sync_id, state.stop, idle_s=IDLE_S):
            state.failures = 0
    except Exception as err:
        # any failure of a follower (source gone, a malformed event) must not end the
        # worker: it is logged and the follower restarted after a pause
        state.failures += 1
        pause = min(MAX_PAUSE_S, 2.0 ** state.failures)
        state.not_before = time.monotonic() + pause
        log.warning("cdc sync %s: follower failed (%s); restarting in %.0f s", sync_id,
                    str(err).replace(secret_key, "***"), pause)


def tend(database_url: str, secret_key: str, followers: dict[int, _Follower]) -> None:
    """One round: start followers for cdc syncs without a live one, stop the others."""
    wanted = cdc_syncs(database_url)
    for sync_id in list(followers):
        if sync_id not in wanted:
            followers.pop(sync_id).stop.set()
    now = time.monotonic()
    for sync_id in wanted:
        state = followers.setdefault(sync_id, _Follower())
        alive = state.thread is not None and state.thread.is_alive()
        if not alive and now >= state.not_before:
            state.thread = threading.Thread(target=_run, name=f"cdc-{sync_id}", daemon=True,
                                            args=(database_url, secret_key, sync_id, state))
            state.thread.start()


async def supervise(database_url: str, secret_key: str, stop: asyncio.Event) -> None:
    followers: dict[int, _Follower] = {}
    try:
        while not stop.is_set():
            try:
                await asyncio.to_thread(tend, database_url, secret_key, followers)
            except psycopg.Error as err:
                log.warning("cdc followers: cannot read the syncs: %s", err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_S)
    finally:
        for state in followers.values():
            state.stop.set()
