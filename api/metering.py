"""API call metering: calls made with API keys, buffered in memory and copied into the
`api_calls` hypertable about once a second (one COPY instead of one INSERT per call)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)
MAX_BUFFERED = 100_000


class Meter:
    def __init__(self, pool: AsyncConnectionPool, interval_s: float = 1.0) -> None:
        self.pool = pool
        self.interval_s = interval_s
        self.rows: list[tuple[datetime, int, str, str, int, float]] = []
        self.dropped = 0

    def record(self, key_id: int, method: str, route: str, status: int, ms: float) -> None:
        if len(self.rows) >= MAX_BUFFERED:
            # the database is away for long: keep memory bounded, count what is lost
            self.dropped += 1
            return
        self.rows.append((datetime.now(UTC), key_id, method, route, status, ms))

    async def flush(self) -> None:
        rows, self.rows = self.rows, []
        if not rows:
            return
        try:
            async with self.pool.connection() as conn, conn.transaction():
                async with conn.cursor().copy(
                    "COPY api_calls (time, key_id, method, route, status, duration_ms)"
                    " FROM STDIN"
                ) as copy:
                    for row in rows:
                        await copy.write_row(row)
                last_used: dict[int, datetime] = {}
                for when, key_id, *_ in rows:
                    last_used[key_id] = max(when, last_used.get(key_id, when))
                await conn.cursor().executemany(
                    "UPDATE api_keys SET last_used_at = %s WHERE id = %s",
                    [(when, key_id) for key_id, when in last_used.items()],
                )
        except Exception as err:
            log.warning("metering: %d calls not stored yet: %s", len(rows), err)
            self.rows = rows + self.rows  # retried on the next flush

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.interval_s)
                await self.flush()
        finally:
            with contextlib.suppress(Exception):
                await self.flush()
