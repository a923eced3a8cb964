"""The map page (一张图) in Chromium: the basemap outline and the API's vector-tile layers
render with no request to any host but the console's own, and a click on a device opens its
detail with the link into the device page."""

from __future__ import annotations

from urllib.parse import urlparse

import psycopg
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Console, login, shoot

PLACES = {"wall": (116.7700, 33.9200), "ups": (116.7712, 33.9207), "matrix": (116.7690, 33.9212)}
LOADED = """(need) => { const m = window.__cityopsMap; if (!m || !m.loaded()) return false;
  return m.queryRenderedFeatures({ layers: ['devices-point'] }).length >= need
    && m.querySourceFeatures('basemap').length > 0; }"""


def _place(database_url: str, console: Console) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for key, (lon, lat) in PLACES.items():
            conn.execute("UPDATE devices SET longitude = %s, latitude = %s WHERE id = %s",
                         (lon, lat, console.devices[key]))


def test_map_renders_offline_and_a_click_opens_the_device(page: Page, console: Console,
                                                          database_url: str) -> None:
    _place(database_url, console)
    event = console.admin.post("/v1/events", json={
        "channel": "inspector", "category_code": "F01.01", "description": "井盖缺失",
        "longitude": 116.7705, "latitude": 33.9195})
    assert event.status_code == 201, event.text
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(urlparse(r.url).hostname or urlparse(r.url).scheme))
    login(page, console, "admin", "/map?lon=116.7703&lat=33.9205&z=16")
    page.wait_for_function(LOADED, arg=len(PLACES), timeout=60_000)
    rendered = page.evaluate("""() => window.__cityopsMap.queryRenderedFeatures(
        { layers: ['devices-point', 'events-point'] }).map(f => [f.layer.id, f.properties.id])""")
    assert {("devices-point", console.devices[k]) for k in PLACES} <= {tuple(r) for r in rendered}
    assert ("events-point", event.json()["id"]) in {tuple(r) for r in rendered}
    ups = console.devices["ups"]
    x, y = page.evaluate(
        "(ll) => { const p = window.__cityopsMap.project(ll); return [p.x, p.y]; }",
        list(PLACES["ups"]))
    page.locator("[data-test=map]").click(position={"x": x, "y": y})
    detail = page.locator("[data-test=map-detail]")
    expect(detail).to_contain_text(ups)
    expect(page.locator("[data-test=map-link]")).to_have_attribute("href", f"/devices/{ups}")
    shoot(page, console, "console-map")
    # every request went to the console's own origin (blob:/data: are in-page)
    assert hosts <= {"127.0.0.1", "blob", "data"}, hosts
    # draw a square around the three devices and count what it holds
    page.locator("[data-test=map-draw]").click()
    corners = page.evaluate("""() => { const m = window.__cityopsMap;
        return [[116.7685, 33.9190], [116.7718, 33.9190], [116.7718, 33.9215],
                [116.7685, 33.9215]].map(ll => m.project(ll)).map(p => [p.x, p.y]); }""")
    for cx, cy in corners:
        page.locator("[data-test=map]").click(position={"x": cx, "y": cy})
    page.locator("[data-test=map-count]").click()
    expect(page.locator("[data-test=map-within] [data-count=devices]")).to_have_text("3")
    expect(page.locator("[data-test=map-within] [data-count=events]")).to_have_text("1")
    page.locator("[data-test=map-link]").click()
    expect(page).to_have_url(f"{console.url}/devices/{ups}")
