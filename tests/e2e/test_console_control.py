"""Command-centre control in the browser: a video-wall window switched and confirmed by the
controller's read-back, a value out of range refused, a matrix route, and a role that may not
send commands held off."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Console, login, shoot


def _last_command(console: Console, device: str) -> dict:
    return console.admin.get("/v1/commands", params={"device": device, "limit": 1}).json()[
        "items"][0]


def test_video_wall_window_input_is_switched_and_read_back(page: Page, console: Console) -> None:
    wall, audio = console.devices["wall"], console.devices["audio"]
    preset = f"meeting-{console.gateway[-6:]}"
    created = console.client("operator").put(f"/v1/presets/{preset}", json={
        "title": "会商模式", "steps": [
            {"device": wall, "method": "recall_preset", "args": {"preset": 3}},
            {"device": audio, "point": "master_mute", "value": False}]})
    assert created.status_code == 200, created.text
    login(page, console, "operator", "/control")
    card = page.locator(f".panel[data-device='{wall}']")
    window = card.locator("[data-window='2']")
    expect(window.locator("[data-test=window-source]")).to_have_text("2")  # the simulator's own
    window.click()
    card.locator(".pick [data-input='7']").click()
    result = card.locator("[data-test=video-wall] [data-test=cmd-result]")
    expect(result).to_contain_text("设备回读 7")
    expect(window.locator("[data-test=window-source]")).to_have_text("7")
    command = _last_command(console, wall)
    assert (command["point"], command["state"], command["readback"]) == (
        "window_2_source", "succeeded", 7)
    assert command["created_by"] == console.users["operator"][0]

    layout = card.locator(".pc[data-point=layout]")
    layout.locator("[data-test=choice]").select_option("4")
    layout.locator("[data-test=apply]").click()
    expect(layout.locator("[data-test=cmd-result]")).to_contain_text("设备回读 4")
    expect(layout.locator("[data-test=current]")).to_contain_text("4")

    scene = page.locator(f"[data-preset='{preset}']")
    scene.locator("[data-test=run-preset]").click()
    expect(scene.locator(".badge.st-succeeded")).to_have_count(2)
    expect(scene).to_contain_text("↩ 3")  # the controller's layout after the recall
    shoot(page, console, "control-wall")


def test_out_of_range_volume_is_refused_and_a_matrix_route_is_confirmed(
    page: Page, console: Console
) -> None:
    audio, matrix = console.devices["audio"], console.devices["matrix"]
    login(page, console, "operator", "/control?tab=audio")
    volume = page.locator(f".panel[data-device='{audio}'] .pc[data-point=master_volume_db]")
    volume.locator("[data-test=value-input]").fill("50")
    volume.locator("[data-test=apply]").click()
    refused = volume.locator("[data-test=cmd-result]")
    expect(refused).to_contain_text("超出允许范围")
    expect(refused).to_contain_text("12")  # the profile's maximum, in the API's words
    sent = console.admin.get("/v1/commands", params={"device": audio}).json()["items"]
    assert all(c["value"] != 50 for c in sent), "nothing out of range was sent to the device"
    volume.locator("[data-test=value-input]").fill("-12.5")
    volume.locator("[data-test=apply]").click()
    expect(refused).to_contain_text("设备回读 -12.5")

    page.click("[data-tab=matrix]")
    grid = page.locator(f".panel[data-device='{matrix}'] [data-test=matrix]")
    grid.locator("[data-output='3'] [data-input='6']").click()
    expect(grid.locator("[data-output='3'] [data-test=cmd-result]")).to_contain_text("设备回读 6")
    expect(grid.locator("[data-output='3'] [data-input='6']")).to_have_class("cell lit")
    shoot(page, console, "control-matrix")


def test_a_viewer_sees_the_controls_locked_and_no_cloud(page: Page, console: Console) -> None:
    login(page, console, "viewer", "/control")
    expect(page.locator("[data-test=control-locked]")).to_contain_text("只读用户")
    card = page.locator(f".panel[data-device='{console.devices['wall']}']")
    expect(card.locator(".pick [data-input='3']")).to_be_disabled()
    expect(page.locator("a[data-nav=cloud]")).to_have_count(0)
    page.goto("/cloud")
    expect(page.locator("[data-test=page-refused]")).to_contain_text("无权查看")
    # the API refuses the viewer too, whatever the page shows
    viewer = console.client("viewer")
    refused = viewer.post(f"/v1/devices/{console.devices['wall']}/commands",
                          json={"point": "layout", "value": 2})
    assert refused.status_code == 403
