"""Cameras in Chromium: the map's camera detail (a camera linked to an ONVIF device shows the
device and its latest snapshot; a snapshot its gateway cannot take is refused with the reason
in Chinese), and a camera put on a video-wall window by name from the control page."""

from __future__ import annotations

import psycopg
from playwright.sync_api import Page, expect
from psycopg.types.json import Jsonb

from edge_agents.profiles import load_profile
from simulators.onvif.server import make_jpeg
from tests.e2e.conftest import Console, login
from tests.e2e.test_console_control import _last_command

PLACE = (116.7650, 33.9180)


def _seed(database_url: str, console: Console) -> tuple[str, str]:
    """A camera of the map linked to a camera device the console's agent does not know (its
    config is not re-sent), with a snapshot already kept."""
    profile = load_profile("security/onvif_camera")
    device, camera = f"{console.gateway}-cam", f"cam-{console.gateway}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO profiles (id, protocol, category, title, body)"
                     " VALUES (%s, 'onvif', 'security', %s, %s) ON CONFLICT (id) DO NOTHING",
                     (profile.model, profile.title, Jsonb(profile.model_dump(mode="json"))))
        conn.execute("INSERT INTO devices (id, title, gateway_id, profile_id)"
                     " VALUES (%s, '广场东 枪机', %s, %s)",
                     (device, console.gateway, profile.model))
        conn.execute("INSERT INTO facilities (id, kind, name, longitude, latitude, device_id)"
                     " VALUES (%s, 'camera', '县府广场东', %s, %s, %s)", (camera, *PLACE, device))
        conn.execute("INSERT INTO camera_snapshots (device_id, command_id, taken_by, image)"
                     " VALUES (%s, gen_random_uuid(), 'e2e', %s)", (device, make_jpeg(camera)))
    return camera, device


def test_camera_detail_shows_its_device_and_snapshot(page: Page, console: Console,
                                                     database_url: str) -> None:
    camera, device = _seed(database_url, console)
    login(page, console, "operator", f"/map?lon={PLACE[0]}&lat={PLACE[1]}&z=16")
    page.wait_for_function("""(id) => { const m = window.__cityopsMap; return m && m.loaded()
        && m.queryRenderedFeatures({ layers: ['cameras-point'] })
             .some(f => f.properties.id === id); }""", arg=camera, timeout=60_000)
    x, y = page.evaluate(
        "(ll) => { const p = window.__cityopsMap.project(ll); return [p.x, p.y]; }", list(PLACE))
    page.locator("[data-test=map]").click(position={"x": x, "y": y})
    detail = page.locator("[data-test=map-camera]")
    expect(detail.locator("[data-test=camera-device]")).to_have_text(device)
    snapshot = detail.locator("[data-test=camera-snapshot]")
    expect(snapshot).to_be_visible()
    page.wait_for_function("(img) => img.complete && img.naturalWidth === 320",
                           arg=snapshot.element_handle())
    detail.locator("[data-test=camera-take]").click()
    error = detail.locator("[data-test=camera-error]")
    expect(error).to_contain_text("设备拒绝了指令")  # the gateway knows no such device
    expect(error).to_contain_text(f"unknown device {device}")


def test_operator_puts_a_camera_on_a_wall_window_by_name(page: Page, console: Console,
                                                         database_url: str) -> None:
    wall, camera = console.devices["wall"], f"cam-wall-{console.gateway}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO facilities (id, kind, name, longitude, latitude)"
                     " VALUES (%s, 'camera', '淮海路口', 116.76, 33.91)", (camera,))
    mapped = console.client("ops_engineer").put(f"/v1/walls/{wall}/inputs/9",
                                                json={"camera": "淮海路口"})
    assert mapped.status_code == 200, mapped.text
    login(page, console, "operator", "/control")
    card = page.locator(f".panel[data-device='{wall}']")
    window = card.locator("[data-window='3']")
    window.click()
    card.locator(f"[data-test=wall-cameras] [data-camera='{camera}']").click()
    expect(card.locator("[data-test=video-wall] [data-test=cmd-result]")).to_contain_text(
        "设备回读 9")
    expect(window.locator("[data-test=window-source]")).to_have_text("9")
    command = _last_command(console, wall)
    assert (command["point"], command["value"], command["state"]) == (
        "window_3_source", 9, "succeeded")
