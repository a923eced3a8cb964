"""Periodic work of the ingest workers: publish alarm events, check for silent devices,
refresh rollups (unless TimescaleDB does: continuous aggregates), apply retention.

Every worker runs the loops; a session advisory lock per job lets one worker at a time do the
work (the lock goes with the session, so a killed worker frees it at once). Publishing needs
no lock: `publish_pending` skips rows another worker has locked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import psycopg
from psycopg import AsyncConnection

from cityops.errors import BrokerUnavailable, ConfigError, SinkUnavailable
from ingestion import alarms, rollups
from ingestion.metrics import IngestMetrics
from ingestion.retention import apply_retention
from ingestion.rules.engine import RuleEngine

log = logging.getLogger(__name__)
LOCK_OFFLINE, LOCK_ROLLUPS, LOCK_RETENTION = 7413101, 7413102, 7413103


class Jobs:
    def __init__(
        self, database_url: str, metrics: IngestMetrics, publish: alarms.Publish, *,
        offline_check_s: float, rollup_refresh_s: float, retention_check_s: float,
        retention_plan: dict[str, int], rules_reload_s: float, rollup_duty: float = 1.0,
        deployment: str = "cityops",
    ) -> None:
        self.database_url = database_url
        self.deployment = deployment  # names the alarm topics (alarms.alarm_topic_root)
        self.metrics = metrics
        self.publish = publish
        self.conn: AsyncConnection | None = None
        # the rollup refresh has a connection and a loop of its own: spread out to leave the
        # database to the stores, a round can take seconds, which must not hold up alarms
        self.rollup_conn: AsyncConnection | None = None
        self.rollup_refresh_s = rollup_refresh_s
        self.rollup_duty = rollup_duty  # share of the time it works (ingestion/rollups.py)
        self.offline = RuleEngine(database_url, rules_reload_s)
        self.schedule: list[tuple[str, float, Callable[[], Awaitable[None]]]] = [
            ("publish", 0.25, self._publish),
            ("offline", offline_check_s, self._offline),
            ("retention", retention_check_s, self._retention),
        ]
        self.retention_plan = retention_plan
        self.wake = asyncio.Event()
        self._failing: set[str] = set()
        self.caggs: bool | None = None  # rollups are continuous aggregates; asked once

    async def _connection(self) -> AsyncConnection:
        self.conn = await _open(self.conn, self.database_url)
        return self.conn

    async def run(self) -> None:
        keeper = asyncio.create_task(self._rollup_loop())
        try:
            await self._main_loop()
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _rollup_loop(self) -> None:
        while True:
            await self._run_one("rollups", self._rollups)
            await asyncio.sleep(self.rollup_refresh_s)

    async def _main_loop(self) -> None:
        due = {name: 0.0 for name, _, _ in self.schedule}
        while True:
            now = time.monotonic()
            for name, every_s, job in self.schedule:
                if now >= due[name]:
                    due[name] = now + every_s
                    await self._run_one(name, job)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), 0.25)
            self.wake.clear()

    async def _run_one(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        try:
            await job()
            if name in self._failing:
                log.info("job %s: working again", name)
                self._failing.discard(name)
        except (psycopg.Error, SinkUnavailable, BrokerUnavailable, TimeoutError,
                ConfigError) as err:
            self.metrics.job_errors.labels(name).inc()
            if name not in self._failing:  # log the transition, not every failed round
                log.warning("job %s failed: %s", name, err)
                self._failing.add(name)
            if isinstance(err, psycopg.OperationalError) and self.conn is not None:
                await self.conn.close()
                self.conn = None
                await self.offline.close()

    async def _locked(self, key: int, work: Callable[[], Awaitable[None]],
                      conn: AsyncConnection | None = None) -> None:
        conn = conn or await self._connection()
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
        row = await cur.fetchone()
        if not (row and row[0]):
            return  # another worker is on it
        try:
            await work()
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    async def _publish(self) -> None:
        conn = await self._connection()
        while (n := await alarms.publish_pending(conn, self.publish, self.deployment)) > 0:
            self.metrics.alarm_events_published.inc(n)

    async def _offline(self) -> None:
        async def check() -> None:
            self.metrics.alarm_transitions.inc(await self.offline.check_offline())
        await self._locked(LOCK_OFFLINE, check)

    async def _backend(self, conn: AsyncConnection) -> bool:
        """Whether the rollups are continuous aggregates: asked once, as migration 017
        decided it for good (a worker started before that migration must be restarted)."""
        if self.caggs is None:
            caggs = await rollups.uses_caggs(conn)
            log.info("TimescaleDB licence %r: 1-minute and 1-hour rollups %s",
                     await rollups.licence(conn),
                     "are continuous aggregates refreshed by TimescaleDB" if caggs
                     else "kept by the platform")
            self.caggs = caggs
        return self.caggs

    async def _rollups(self) -> None:
        conn = self.rollup_conn = await _open(self.rollup_conn, self.database_url)
        try:
            if await self._backend(conn):
                return  # TimescaleDB's refresh policies keep them

            async def refresh() -> None:
                began = time.monotonic()
                minutes = await rollups.refresh(conn, duty=self.rollup_duty)
                took = time.monotonic() - began
                log.log(logging.INFO if took > 1 else logging.DEBUG,
                        "rollups: %d minute(s) recomputed in %.1f s", minutes, took)
            await self._locked(LOCK_ROLLUPS, refresh, conn)
        except psycopg.OperationalError:
            await conn.close()
            raise

    async def _retention(self) -> None:
        conn = await self._connection()
        caggs = await self._backend(conn)

        async def apply() -> None:
            await apply_retention(conn, self.retention_plan, caggs)
        await self._locked(LOCK_RETENTION, apply)

    async def close(self) -> None:
        await self.offline.close()
        if self.rollup_conn is not None:
            await self.rollup_conn.close()
        if self.conn is not None:
            await self.conn.close()


async def _open(conn: AsyncConnection | None, database_url: str) -> AsyncConnection:
    """`conn` if it is still open, else a new autocommit connection."""
    if conn is None or conn.closed:
        conn = await AsyncConnection.connect(database_url, autocommit=True)
    return conn
