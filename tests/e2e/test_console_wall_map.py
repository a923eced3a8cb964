"""The big screen's centre is the county's map: an alarm raised through the platform (a rule
loaded with the CLI, evaluated by the running ingest on the UPS's readings) appears on the
wall's map over the live stream, and leaves it when cleared, without the map asking for its
whole set again; every request stays on the console's own host."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlparse

import psycopg
import yaml
from playwright.sync_api import Page, expect

from tests.conftest import REPO, settings_env
from tests.e2e.conftest import Console, login, shoot

UPS_AT = (116.8105, 33.8411)
LOADED = """() => { const m = window.__cityopsWallMap; return !!m && m.loaded()
  && m.querySourceFeatures('basemap').length > 0; }"""
ALARMS_DRAWN = """() => window.__cityopsWallMap.queryRenderedFeatures({ layers: ['wall-alarms'] })
  .map(f => [f.properties.id, f.properties.device, f.properties.severity])"""


def _drawn(page: Page, ups: str) -> list[list]:
    return [a for a in page.evaluate(ALARMS_DRAWN) if a[1] == ups]


def test_an_alarm_appears_on_the_big_screen_map_and_leaves_when_cleared(
        page: Page, console: Console, database_url: str, settings, tmp_path) -> None:
    ups = console.devices["ups"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE devices SET longitude = %s, latitude = %s WHERE id = %s",
                     (*UPS_AT, ups))
    hosts: set[str] = set()
    live_calls: list[str] = []
    page.on("request", lambda r: hosts.add(urlparse(r.url).hostname or urlparse(r.url).scheme))
    page.on("request", lambda r: live_calls.append(r.url) if "/v1/map/live" in r.url else None)
    login(page, console, "admin")
    page.wait_for_function(LOADED, timeout=60_000)
    expect(page.locator("[data-test=wall-map-alarms]")).to_be_visible()
    assert _drawn(page, ups) == []
    rule = f"{console.gateway}-ups-wall-map"
    path = tmp_path / "rule.yaml"
    path.write_text(yaml.safe_dump({"rules": [{
        "id": rule, "title": "UPS 输入电压 (一张图测试)", "kind": "threshold",
        "severity": "critical", "target": {"devices": [ups], "point": "input_voltage"},
        "above": 1, "clear": 0}]}, allow_unicode=True))
    subprocess.run([sys.executable, "-m", "cli", "rules", "load", str(path)], cwd=REPO,
                   env=settings_env(settings), check=True, capture_output=True, timeout=60)
    try:
        # the ingest reloads rules every few seconds, then the UPS's next reading raises it
        page.wait_for_function(f"() => ({ALARMS_DRAWN})().some(a => a[1] === {ups!r})",
                               timeout=60_000)
        [(alarm, _, severity)] = _drawn(page, ups)
        assert severity == "critical"
        shoot(page, console, "wall-map")
        # placed with one call for that alarm, not by reloading the whole set
        assert [u for u in live_calls if "alarm=" in u] == [
            f"{console.url}/v1/map/live?alarm={alarm}"]
        assert sum("alarm=" not in u for u in live_calls) == 1
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE rules SET enabled = false WHERE id = %s", (rule,))
    cleared = console.admin.post(f"/v1/alarms/{alarm}/clear", json={"note": "test over"})
    assert cleared.status_code == 200, cleared.text
    page.wait_for_function(f"() => !({ALARMS_DRAWN})().some(a => a[0] === {alarm})",
                           timeout=20_000)
    assert hosts <= {"127.0.0.1", "blob", "data"}, hosts
