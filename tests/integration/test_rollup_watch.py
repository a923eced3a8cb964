"""Buckets answered from what the API process heard (api/rollup_watch.py), against the real
database: the directory of points follows a device moved to another department and a
renamed point; the closed horizon follows the refresh and a late minute; a dropped listening
connection turns it all off (requests ask the database) and back on after reconnecting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from api.main import create_app
from api.rollup_watch import _RELOAD, ON_TIME_S
from cityops.settings import Settings
from tests.api_kit import api_settings, bearer, ok, unique
from tests.conftest import BrokerFixture
from tests.helpers import wait_for
from tests.integration.ingest_helpers import in_a_department, register, roll_up, store_and_roll


def test_the_directory_follows_department_moves_and_renamed_points(
    settings: Settings, broker: BrokerFixture, database_url: str,
) -> None:
    gateway = unique("gw")
    device = f"{gateway}-d"
    point = register(database_url, gateway, {device: ["v"]})[(device, "v")]
    dept, other = in_a_department(database_url, gateway)
    hour = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    store_and_roll(database_url, point, hour, 60)
    staff = bearer(settings, "department_staff", unique("t-staff"), dept)
    viewer = bearer(settings, "viewer", "t-watch-viewer")  # county-wide: no guard query
    params = {"point": "v", "bucket": "1m", "start": hour.isoformat(),
              "end": (hour + timedelta(hours=1)).isoformat()}
    path = f"/v1/devices/{device}/readings"

    def answers(headers: dict[str, str], **more: str) -> int:
        return client.get(path, params=params | more, headers=headers).status_code

    with TestClient(create_app(api_settings(settings, broker))) as client:
        watch = client.app.state.rollup_watch
        wait_for(lambda: watch.cache.usable, what="the watch listening")
        assert len(ok(client.get(path, params=params, headers=staff))["buckets"]) == 60
        assert watch.points.get(device, "v") == (dept, point, "float32")
        assert len(ok(client.get(path, params=params, headers=viewer))["buckets"]) == 60

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE devices SET department_id = %s WHERE id = %s", (other, device))
        # staff are refused by the department guard (a query of its own); the directory,
        # the route's second check, holds the new department once the move is heard
        refused = client.get(path, params=params, headers=staff)
        assert refused.json()["code"] == "forbidden" and "buckets" not in refused.text
        wait_for(lambda: answers(viewer) == 200
                 and watch.points.get(device, "v") == (other, point, "float32"),
                 timeout_s=5, what="the directory read again after the move")

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE points SET name = 'w' WHERE id = %s", (point,))
        wait_for(lambda: answers(viewer) == 404, timeout_s=5,
                 what="the renamed point gone under its old name")
        assert watch.points.get(device, "v") == (other, None, None)
        assert len(ok(client.get(path, params=params | {"point": "w"},
                                 headers=viewer))["buckets"]) == 60


def test_the_closed_horizon_follows_refreshes_late_minutes_and_the_connection(
    settings: Settings, broker: BrokerFixture, database_url: str,
) -> None:
    gateway = unique("gw")
    device = f"{gateway}-d"
    point = register(database_url, gateway, {device: ["v"]})[(device, "v")]
    hour = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    store_and_roll(database_url, point, hour, 60)
    viewer = bearer(settings, "viewer", "t-watch-viewer")
    params = {"point": "v", "bucket": "1m", "start": hour.isoformat(),
              "end": (hour + timedelta(hours=1)).isoformat()}
    path = f"/v1/devices/{device}/readings"
    with TestClient(create_app(api_settings(settings, broker))) as client:
        watch = client.app.state.rollup_watch
        wait_for(lambda: watch.cache.usable, what="the watch listening")
        closed = watch.closed_before()
        now = datetime.now(UTC)
        # nothing dirty: closed up to the reload's minute less what on-time marks may be
        assert now - timedelta(seconds=ON_TIME_S + 60) <= closed <= now - timedelta(
            seconds=ON_TIME_S - 60)
        first = ok(client.get(path, params=params, headers=viewer))
        assert first["buckets"][30]["avg"] == 30.0

        # a late reading: announced at its commit, the horizon drops to its minute, the
        # answer includes it; the refresh recomputes it and the horizon comes back
        with psycopg.connect(database_url) as conn:
            conn.execute("INSERT INTO readings (time, point_id, value) VALUES (%s, %s, 130)",
                         (hour + timedelta(minutes=30, seconds=50), point))
            conn.execute("INSERT INTO rollup_dirty VALUES (%s)", (hour + timedelta(minutes=30),))
        wait_for(lambda: watch.closed_before() == hour + timedelta(minutes=30),
                 timeout_s=5, what="the late minute heard")
        assert ok(client.get(path, params=params, headers=viewer))["buckets"][30]["avg"] == 80.0
        reloads = watch.reloads

        roll_up(database_url)
        wait_for(lambda: watch.reloads > reloads and watch.closed_before() > closed - timedelta(
            seconds=1), timeout_s=5, what="the horizon back after the refresh")
        assert ok(client.get(path, params=params, headers=viewer))["buckets"][30]["avg"] == 80.0

        # the listening connection killed: off at once (requests ask the database), back on
        with psycopg.connect(database_url, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query = %s", (_RELOAD,)).fetchone()
        assert killed == (1,)
        wait_for(lambda: watch.closed_before() is None, timeout_s=5, what="the watch off")
        assert ok(client.get(path, params=params, headers=viewer))["buckets"][30]["avg"] == 80.0
        wait_for(lambda: watch.closed_before() is not None, timeout_s=10,
                 what="the watch back")
        assert ok(client.get(path, params=params, headers=viewer))["buckets"][30]["avg"] == 80.0
