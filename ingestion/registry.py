"""The device registry as the decoder sees it, kept current while the worker runs.

Workers used to re-read the points only when an unknown point arrived (issue #22): a deleted
device's readings were then stored under its old point ids, and a re-registered device (same
names, new ids) got nothing until the workers restarted. Now each worker LISTENs on a
connection of its own: migrations 056-057 make every change to gateways, devices or points
NOTIFY `cityops_registry` when it commits, and the worker re-reads the registry at once. It
also re-reads every `ingest_registry_refresh_s`, so a missed notification (the connection
dropped in between) costs at most that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import psycopg
from psycopg import AsyncConnection

from cityops.backoff import Backoff
from ingestion.decode import Decoder, PointRef

log = logging.getLogger(__name__)
CHANNEL = "cityops_registry"
# a burst of changes (a registry file being loaded) is read once, not once per statement
MIN_INTERVAL_S = 0.2
_POINTS_SQL = (
    "SELECT d.id, p.name, p.id, d.gateway_id, p.data_type = 'string'"
    " FROM points p JOIN devices d ON d.id = p.device_id"
)


class RegistryWatcher:
    def __init__(self, database_url: str, decoder: Decoder, refresh_s: float) -> None:
        self.database_url = database_url
        self.decoder = decoder
        self.refresh_s = refresh_s
        self.loads = 0  # how many times the registry was read (for tests and metrics)
        self._conn: AsyncConnection | None = None

    async def run(self) -> None:
        backoff, failing = Backoff(cap_s=10), False
        while True:
            try:
                self._conn = await AsyncConnection.connect(self.database_url, autocommit=True)
                # LISTEN before the first read: a change committed after it is never missed
                await self._conn.execute(f"LISTEN {CHANNEL}")
                if failing:
                    log.info("registry: database back, watching changes again")
                failing = False
                backoff.reset()
                await self._watch(self._conn)
            except psycopg.Error as err:
                if not failing:
                    log.warning("registry: %s; points stay as last read until it is back", err)
                failing = True
            finally:
                await self.close()
            await asyncio.sleep(backoff.next_delay())

    async def _watch(self, conn: AsyncConnection) -> None:
        while True:
            started = time.monotonic()
            await self.load(conn)
            await self._next_change(conn, self.refresh_s)
            rest = MIN_INTERVAL_S - (time.monotonic() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    async def load(self, conn: AsyncConnection) -> None:
        async with conn.cursor() as cur:
            await cur.execute(_POINTS_SQL)
            rows = await cur.fetchall()
            await cur.execute("SELECT id FROM gateways")
            gateways = {gw for (gw,) in await cur.fetchall()}
        # no await in between: the decoder (same event loop) sees the old registry or the new
        self.decoder.points = {(dev, name): PointRef(pid, gw, is_text)
                               for dev, name, pid, gw, is_text in rows}
        self.decoder.gateways |= gateways
        self.loads += 1

    @staticmethod
    async def _next_change(conn: AsyncConnection, timeout_s: float) -> None:
        """Return at the first notification, or after `timeout_s`; drain what is queued."""
        async for _ in conn.notifies(timeout=timeout_s, stop_after=1):
            pass
        async for _ in conn.notifies(timeout=0.0):
            pass

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
