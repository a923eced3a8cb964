"""`cityops map import-points` as a real process, and the demo's map seeding (rolled back, so
the session database keeps no demo areas)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import psycopg
import pytest

from spatial import crs
from spatial.demo import SEAT, TOWNS, seed_demo
from tests.component.test_events_kit import unique
from tests.conftest import REPO, settings_env


def test_import_points_cli_reports_refusals_and_converts(settings, database_url, tmp_path
                                                         ) -> None:
    site = unique("map-site")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO sites (id, name) VALUES (%s, 'pump')", (site,))
    path = tmp_path / "sites.csv"
    path.write_text(f"id,lon,lat\n{site},116.78,33.93\n{site},33.93,116.78\n")
    result = subprocess.run(
        [sys.executable, "-m", "cli", "map", "import-points", str(path), "--table",
         "sites", "--crs", "BD-09"], cwd=REPO, env=settings_env(settings),
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["stored"] == 1
    assert report["refused"][0]["row"] == 3 and "order" in report["refused"][0]["reason"]
    with psycopg.connect(database_url) as conn:
        lon, lat = conn.execute("SELECT longitude, latitude FROM sites WHERE id = %s",
                                (site,)).fetchone()
        source = conn.execute("SELECT source_crs FROM map_layers WHERE name = 'sites'"
                              ).fetchone()[0]
    assert (lon, lat) == pytest.approx(crs.bd09_to_wgs84(116.78, 33.93), abs=1e-9)
    assert source == "BD-09"


def test_seed_demo_places_devices_and_builds_areas(database_url) -> None:
    with psycopg.connect(database_url) as conn:  # one transaction, rolled back
        gateway, device = unique("map-gw"), unique("map-dev")
        conn.execute("INSERT INTO gateways (id) VALUES (%s)", (gateway,))
        conn.execute("INSERT INTO profiles (id, protocol, category, body) VALUES"
                     " ('map-demo', 'modbus', 'power', '{}') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO devices (id, gateway_id, profile_id) VALUES"
                     " (%s, %s, 'map-demo')", (device, gateway))
        got = seed_demo(conn, events=40, now=datetime(2026, 11, 16, tzinfo=UTC))
        assert got["towns"] == len(TOWNS) and got["cells"] == 256
        assert got["devices_placed"] >= 1 and got["events_added"] == 40
        lon, lat = conn.execute("SELECT longitude, latitude FROM devices WHERE id = %s",
                                (device,)).fetchone()
        assert abs(lon - SEAT[0]) < 0.05 and abs(lat - SEAT[1]) < 0.05
        town = conn.execute("SELECT a.name FROM areas a, devices d WHERE d.id = %s"
                            " AND a.kind = 'town' AND ST_Intersects(a.geom, d.geom)",
                            (device,)).fetchone()
        assert town is not None
        assigned = conn.execute("SELECT count(*) FILTER (WHERE town_code IS NOT NULL)"
                                " FROM events WHERE reporter = 'demo-history'").fetchone()[0]
        assert assigned >= 35  # a few may fall outside the county's square
        again = seed_demo(conn, events=40)
        assert again["events_added"] == 0 and again["devices_placed"] == 0
        conn.rollback()
