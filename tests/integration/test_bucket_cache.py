"""The cache of closed periods of buckets (api/bucket_cache.py) in two API processes' apps:
a repeated day is read from the cache and answers the same; a late reading is in the answer
once its notification is heard (api/rollup_watch.py: milliseconds after its commit), and the
rollup refresh that recomputes it drops the cached periods it touched in both apps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.settings import Settings
from ingestion import rollups
from tests.api_kit import api_settings, bearer, ok, unique
from tests.conftest import BrokerFixture
from tests.helpers import wait_for
from tests.integration.ingest_helpers import register


def _refresh(database_url: str) -> None:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            await rollups.refresh(conn)
    asyncio.run(run())


def _store(database_url: str, point: int, rows: list[tuple[datetime, float]]) -> None:
    """What the ingest transaction does: the readings and their minutes marked dirty."""
    with psycopg.connect(database_url) as conn:
        with conn.cursor().copy("COPY readings (time, point_id, value) FROM STDIN") as copy:
            for at, value in rows:
                copy.write_row((at, point, value))
        conn.execute("INSERT INTO rollup_dirty SELECT DISTINCT date_trunc('minute', t)"
                     " FROM unnest(%s::timestamptz[]) t", ([at for at, _ in rows],))


def test_closed_periods_are_cached_and_a_late_reading_invalidates_them(
    settings: Settings, broker: BrokerFixture, database_url: str,
) -> None:
    gateway = unique("gw")
    device = f"{gateway}-d"
    point = register(database_url, gateway, {device: ["v"]})[(device, "v")]
    day = (datetime.now(UTC) - timedelta(days=2)).replace(hour=0, minute=0, second=0,
                                                          microsecond=0)
    _store(database_url, point, [(day + timedelta(minutes=m), float(m)) for m in range(1440)])
    _refresh(database_url)
    auth = bearer(settings, "viewer", "t-bucket-viewer")
    window = {"point": "v", "start": day.isoformat(), "end": (day + timedelta(days=1)).isoformat()}
    minutes, hours = window | {"bucket": "1m"}, window | {"bucket": "1h"}
    path = f"/v1/devices/{device}/readings"
    with TestClient(create_app(api_settings(settings, broker))) as one, \
            TestClient(create_app(api_settings(settings, broker))) as two:
        caches = [c.app.state.bucket_cache for c in (one, two)]
        wait_for(lambda: all(c.usable for c in caches), what="both caches listening")
        first = ok(one.get(path, params=minutes, headers=auth))
        assert len(first["buckets"]) == 1440 and first["buckets"][90]["avg"] == 90.0
        assert len(caches[0].entries) == 24  # the day's 24 closed hours
        hits = caches[0].hits
        assert ok(one.get(path, params=minutes, headers=auth)) == first
        assert caches[0].hits == hits + 24
        daily = ok(two.get(path, params=hours, headers=auth))
        assert daily["buckets"][1]["avg"] == sum(range(60, 120)) / 60
        assert (point, 3600, int(day.timestamp())) in caches[1].entries  # the cached day

        # a late reading in the second hour: in the answers once it is heard of
        watches = [c.app.state.rollup_watch for c in (one, two)]
        assert all(w.closed_before() > day + timedelta(days=1) for w in watches)
        _store(database_url, point, [(day + timedelta(minutes=90, seconds=30), 1090.0)])
        wait_for(lambda: all(w.closed_before() <= day + timedelta(minutes=90)
                             for w in watches), what="both processes hearing the late minute")
        late = ok(one.get(path, params=minutes, headers=auth))
        assert late["buckets"][90] == first["buckets"][90] | {"avg": 590.0, "max": 1090.0,
                                                               "count": 2}
        assert ok(two.get(path, params=hours, headers=auth))["buckets"][1]["max"] == 1090.0
        # the refresh recomputes that minute and tells both processes
        _refresh(database_url)
        wait_for(lambda: (point, 60, int(day.timestamp()) + 3600) not in caches[0].entries
                 and (point, 3600, int(day.timestamp())) not in caches[1].entries,
                 what="the touched hour and day dropped from both caches")
        assert (point, 60, int(day.timestamp())) in caches[0].entries  # untouched hour kept
        assert ok(one.get(path, params=minutes, headers=auth)) == late
        assert ok(one.get(path, params=minutes, headers=auth)) == late  # cached again
        assert ok(two.get(path, params=hours, headers=auth))["buckets"][1]["max"] == 1090.0
        # CSV is computed, not cached, and says the same
        csv = one.get(path, params=minutes | {"format": "csv"}, headers=auth)
        assert csv.status_code == 200 and "1090.0" in csv.text.splitlines()[91]
