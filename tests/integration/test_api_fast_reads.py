"""The hot read paths of issue #21 against the real database: buckets sliced from cached
periods answer what the rollup computes, the device latest from answers refreshed together
keeps its 404, its department check and its staleness bound, the shared latest-of-many
answer stays within its bound and never crosses a department, and a pooled connection
killed on the server is not handed out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from api.main import create_app
from api.pool import DatabasePool, quiet
from api.shared_answers import MAX_AGE_S
from cityops.settings import Settings
from ingestion import rollups
from tests.api_kit import api_settings, bearer, ok, unique
from tests.conftest import BrokerFixture
from tests.helpers import wait_for
from tests.integration.ingest_helpers import in_a_department, register, store_and_roll


def _computed(database_url: str, point: int, bucket_s: int, lo: datetime, hi: datetime
              ) -> list[tuple]:
    async def read() -> list[tuple]:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await rollups.bucketed(conn, point, bucket_s, lo, hi)
    return [(t, a, n) for t, a, _, _, n in asyncio.run(read())]


def _as_rows(answer: dict) -> list[tuple]:
    return [(datetime.fromisoformat(b["time"]), b["avg"], b["count"]) for b in answer["buckets"]]


def test_buckets_sliced_from_cached_periods_equal_the_rollup(
    settings: Settings, broker: BrokerFixture, database_url: str,
) -> None:
    gateway = unique("gw")
    device = f"{gateway}-d"
    point = register(database_url, gateway, {device: ["v"]})[(device, "v")]
    day = (datetime.now(UTC) - timedelta(days=3)).replace(hour=0, minute=0, second=0,
                                                          microsecond=0)
    store_and_roll(database_url, point, day, 4 * 60, (10, 40), lambda m, s: m + s / 100)
    auth = bearer(settings, "viewer", "t-fast-viewer")
    path = f"/v1/devices/{device}/readings"
    # edges inside hours on minute boundaries (sliced), and one mid-minute (computed)
    windows = [(day + timedelta(minutes=30), day + timedelta(hours=2, minutes=15)),
               (day + timedelta(minutes=30, seconds=20), day + timedelta(hours=3))]
    with TestClient(create_app(api_settings(settings, broker))) as client:
        cache = client.app.state.bucket_cache
        wait_for(lambda: cache.usable, what="the bucket cache listening")
        for lo, hi in windows:
            params = {"point": "v", "bucket": "1m", "start": lo.isoformat(),
                      "end": hi.isoformat()}
            first = ok(client.get(path, params=params, headers=auth))
            assert _as_rows(first) == _computed(database_url, point, 60, lo, hi)
            hits = cache.hits
            assert ok(client.get(path, params=params, headers=auth)) == first
            assert cache.hits > hits  # the second answer came from the cache
        assert _as_rows(first)[0] == (day + timedelta(minutes=30), 30.4, 1)  # partial minute


def test_device_latest_keeps_404_departments_and_its_bound(
    settings: Settings, broker: BrokerFixture, database_url: str,
) -> None:
    gateway = unique("gw")
    device, bare = f"{gateway}-d", f"{gateway}-bare"
    ids = register(database_url, gateway, {device: ["a", "b"], bare: []})
    _dept, other = in_a_department(database_url, gateway)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO readings_latest (point_id, time, value, quality)"
                     " VALUES (%s, now(), 7.5, 1)", (ids[(device, "b")],))
    viewer = bearer(settings, "viewer", "t-fast-viewer")
    stranger = bearer(settings, "department_staff", unique("t-staff"), other)
    path = f"/v1/devices/{device}/latest"
    with TestClient(create_app(api_settings(settings, broker))) as client:
        got = ok(client.get(path, headers=viewer))
        assert [(p["point"], p["value"], p["quality"]) for p in got["points"]] == [
            ("a", None, None), ("b", 7.5, "uncertain")]
        assert ok(client.get(f"/v1/devices/{bare}/latest", headers=viewer))["points"] == []
        missing = client.get(f"/v1/devices/{gateway}-none/latest", headers=viewer)
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        refused = client.get(path, headers=stranger)
        assert refused.status_code == 403 and "7.5" not in refused.text
        answers = client.app.state.device_answers
        served = answers.served
        assert ok(client.get(path, headers=viewer)) == got
        assert answers.fetched == 2 and answers.served == served + 1  # from memory

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE readings_latest SET value = 8.5 WHERE point_id = %s",
                         (ids[(device, "b")],))
            conn.execute("UPDATE devices SET department_id = %s WHERE id = %s",
                         (other, device))
        changed_at = datetime.now(UTC)

        def value() -> float | None:
            return ok(client.get(path, headers=viewer))["points"][1]["value"]
        wait_for(lambda: value() == 8.5, timeout_s=5, interval_s=0.05,
                 what="the new value in the device's answer")
        took = (datetime.now(UTC) - changed_at).total_seconds()
        assert took < MAX_AGE_S + 0.5, f"the new value showed after {took:.2f} s"
        # the refresh that brought it brought the device's new department as well
        assert ok(client.get(path, headers=stranger))["points"][1]["value"] == 8.5
        assert answers.refreshed >= 1 and answers.fetched == 2


def test_latest_of_many_shared_within_its_bound_and_per_department(
    settings: Settings, broker: BrokerFixture, database_url: str,
) -> None:
    gateway = unique("gw")
    device = f"{gateway}-d"
    point = register(database_url, gateway, {device: ["a"]})[(device, "a")]
    _dept, other = in_a_department(database_url, gateway)

    def set_value(value: float) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("INSERT INTO readings_latest (point_id, time, value, quality) VALUES"
                         " (%s, now(), %s, 0) ON CONFLICT (point_id) DO UPDATE SET"
                         " value = excluded.value, time = excluded.time", (point, value))

    viewer = bearer(settings, "viewer", "t-fast-viewer")
    staff = bearer(settings, "department_staff", unique("t-staff"), other)
    set_value(1.0)
    with TestClient(create_app(api_settings(settings, broker))) as client:
        def value(headers: dict) -> list:
            page = ok(client.get("/v1/readings/latest", params={"gateway": gateway},
                                 headers=headers))
            return [p["value"] for item in page["items"] for p in item["points"]]

        assert value(viewer) == [1.0]
        # compressed once with the answer, for the clients that accept gzip; as is otherwise
        path, params = "/v1/readings/latest", {"gateway": gateway}
        packed = client.get(path, params=params, headers=viewer | {"Accept-Encoding": "gzip"})
        plain = client.get(path, params=params,
                           headers=viewer | {"Accept-Encoding": "identity"})
        assert packed.headers["content-encoding"] == "gzip"
        assert "content-encoding" not in plain.headers
        assert packed.json() == plain.json() and plain.json()["total"] == 1
        assert packed.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
        answers = client.app.state.latest_answers
        shared = answers.shared
        assert value(viewer) == [1.0] and answers.shared == shared + 1
        assert value(staff) == []  # another department's scope: never the viewer's answer
        set_value(2.0)
        changed_at = datetime.now(UTC)
        wait_for(lambda: value(viewer) == [2.0], timeout_s=5, interval_s=0.05,
                 what="the new value in the shared answer")
        took = (datetime.now(UTC) - changed_at).total_seconds()
        assert took < MAX_AGE_S + 0.5, f"the new value showed after {took:.2f} s"


def test_a_pooled_connection_killed_on_the_server_is_not_handed_out(database_url: str) -> None:
    async def run() -> None:
        async with DatabasePool(database_url, min_size=1, max_size=1, open=False) as pool:
            await pool.open(wait=True)
            async with pool.connection() as conn:
                assert quiet(conn)
                pid = conn.info.backend_pid
            with psycopg.connect(database_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                # the signal is asynchronous: the backend has gone (and said so) once it is
                # no longer listed
                wait_for(lambda: admin.execute("SELECT count(*) FROM pg_stat_activity WHERE"
                                               " pid = %s", (pid,)).fetchone() == (0,),
                         what="the backend gone")
            async with pool.connection() as conn:  # the dead one found and replaced
                assert (await (await conn.execute("SELECT 1")).fetchone()) == (1,)
                assert conn.info.backend_pid != pid
    asyncio.run(run())
