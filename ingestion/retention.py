"""How long each table keeps its rows, and the job that enforces it.

Hypertables lose whole chunks with `drop_chunks` (in the Apache build; the retention *policy*
API is Timescale-licensed, so the worker runs it itself); plain tables delete old rows.
Days per table come from the setting `CITYOPS_INGEST_RETENTION_DAYS` (JSON), merged over
DEFAULT_DAYS; 0 keeps rows forever.

When the rollups are continuous aggregates, `drop_chunks` works on their names too. Dropping
chunks of an aggregate's source records an invalidation, and a refresh over it would delete
the aggregate's rows there (the rollups are meant to outlive readings), so the sources
(readings, and rollup_1m under rollup_1h) must keep more days than the refresh policies
reach back: a plan that does not is refused before anything is dropped.
"""

from __future__ import annotations

import logging

from psycopg import AsyncConnection

from cityops.errors import ConfigError
from ingestion.rollups import CAGG_REFRESH_WINDOW_DAYS

log = logging.getLogger(__name__)

# table -> (time column, is a hypertable)
TABLES: dict[str, tuple[str, bool]] = {
    "readings": ("time", True),
    "readings_text": ("time", True),
    "rollup_1m": ("bucket", True),
    "rollup_1h": ("bucket", True),
    "ingested_batches": ("stored_at", False),
    "dead_letters": ("received_at", False),
}
DEFAULT_DAYS = {
    "readings": 180, "readings_text": 180, "rollup_1m": 730, "rollup_1h": 0,
    "ingested_batches": 30, "dead_letters": 90,
}


def retention_plan(overrides: dict[str, int]) -> dict[str, int]:
    """DEFAULT_DAYS with the overrides; ConfigError names an unknown table or a bad value."""
    unknown = sorted(set(overrides) - set(TABLES))
    if unknown:
        raise ConfigError(
            f"CITYOPS_INGEST_RETENTION_DAYS: unknown table(s) {', '.join(unknown)};"
            f" known: {', '.join(TABLES)}")
    negative = sorted(t for t, d in overrides.items() if d < 0)
    if negative:
        raise ConfigError(f"CITYOPS_INGEST_RETENTION_DAYS: negative days for {negative}")
    return DEFAULT_DAYS | overrides


def check_cagg_plan(plan: dict[str, int]) -> None:
    """ConfigError if the plan drops aggregate sources inside the refresh window."""
    short = sorted(t for t in ("readings", "rollup_1m")
                   if 0 < plan.get(t, 0) <= CAGG_REFRESH_WINDOW_DAYS)
    if short:
        raise ConfigError(
            f"CITYOPS_INGEST_RETENTION_DAYS: {', '.join(short)} must keep more than"
            f" {CAGG_REFRESH_WINDOW_DAYS} days with continuous aggregates (their refresh"
            " would delete the rollups of dropped chunks); nothing dropped")


async def apply_retention(
    conn: AsyncConnection, plan: dict[str, int], caggs: bool = False,
) -> dict[str, int]:
    """Drop what is older than the plan allows; returns chunks or rows removed per table.
    `caggs`: the rollups are continuous aggregates (see check_cagg_plan)."""
    if caggs:
        check_cagg_plan(plan)
    removed: dict[str, int] = {}
    for table, days in plan.items():
        if days <= 0:
            continue
        column, hyper = TABLES[table]
        async with conn.transaction():
            if hyper:
                cur = await conn.execute(
                    "SELECT count(*) FROM drop_chunks(%s::regclass,"
                    " older_than => now() - make_interval(days => %s))", (table, days))
            else:
                cur = await conn.execute(
                    f"WITH gone AS (DELETE FROM {table}"
                    f" WHERE {column} < now() - make_interval(days => %s) RETURNING 1)"
                    " SELECT count(*) FROM gone", (days,))
            row = await cur.fetchone()
        removed[table] = row[0] if row else 0
        if removed[table]:
            log.info("retention: %s lost %d %s older than %d days", table, removed[table],
                     "chunk(s)" if hyper else "row(s)", days)
    return removed
