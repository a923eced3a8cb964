"""Logging in, the big screen with values arriving live over SSE, the language switch, and a
device's view with its history chart."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Console, login, shoot


def test_wrong_password_is_refused_then_the_wall_shows_live_values(
    page: Page, console: Console, city_events: list[int]
) -> None:
    page.goto("/")
    page.fill("input[name=username]", console.users["admin"][0])
    page.fill("input[name=password]", "not-the-password")
    page.click("form[data-test=login] button.primary")
    expect(page.locator("[data-test=login-error]")).to_contain_text("用户名或密码错误")

    login(page, console, "admin")
    expect(page.locator(".wall-title")).to_have_text("城市运行 · 一张图")
    # the four simulated devices report online through their gateway's status
    expect(page.locator("[data-test=kpi-devices] .kpi-value")).to_contain_text("/")
    ticker = page.locator("[data-test=ticker] .wall-row")
    expect(ticker.first).to_be_visible(timeout=20_000)
    first = ticker.first.inner_text()
    # new readings keep arriving over SSE: the newest row changes without a reload
    expect(ticker.first).not_to_have_text(first, timeout=20_000)
    expect(page.locator(".live.live-live")).to_be_visible()
    expect(page.locator("[data-test=kpi-alarms] .kpi-value")).not_to_have_text("0", timeout=20_000)
    # two snapshots of the ingestion totals give a rate
    rate = page.locator("[data-test=kpi-rate] .kpi-value")
    expect(rate).to_have_text(re.compile(r"^\d[\d,]*条/分$"))
    shoot(page, console, "wall")

    page.click("button[data-lang=en]")
    expect(page.locator(".wall-title")).to_have_text("The county at a glance")
    expect(page.locator("a[data-nav=control]")).to_have_text("Control")
    page.reload()  # the choice is kept by the browser
    expect(page.locator(".wall-title")).to_have_text("The county at a glance")
    expect(page.locator("[data-test=kpi-alarms] .kpi-note")).to_contain_text("critical")
    expect(page.locator("[data-test=ticker] .wall-row").first).to_be_visible()
    shoot(page, console, "wall-en")


def test_device_view_shows_latest_values_and_a_zoomable_history(
    page: Page, console: Console
) -> None:
    device = console.devices["audio"]
    login(page, console, "operator", f"/devices/{device}")
    expect(page.locator("[data-test=device-title]")).to_have_text("会商厅功放")
    level = page.locator("[data-point=output_level_db] [data-test=point-value]")
    expect(level).not_to_have_text("—")
    before = level.inner_text()
    expect(level).not_to_have_text(before, timeout=20_000)  # a random walk, pushed live
    page.click("[data-point=amplifier_temperature_c]")
    expect(page.locator("[data-test=point-select]")).to_have_value("amplifier_temperature_c")
    page.click("[data-test=ranges] button:has-text('15m')")
    chart = page.locator("[data-test=history-chart] canvas")
    expect(chart).to_be_visible()
    # the readings behind the chart come from the API: the raw series for the range
    page.click("[data-test=ranges] button:has-text('6h')")
    expect(page.locator("text=按 60 秒聚合")).to_be_visible()
    page.click("[data-point=output_level_db]")
    page.click("[data-test=ranges] button:has-text('15m')")
    expect(chart).to_be_visible()
    shoot(page, console, "device")
