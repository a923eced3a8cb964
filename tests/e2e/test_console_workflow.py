"""Alarms and events at the desk: an operator acknowledges an alarm, a dispatcher moves an event
a step, and department staff of another department are refused clearly."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Console, login, shoot
from tests.helpers import wait_for


def test_operator_acknowledges_an_alarm_and_sees_its_history(page: Page, console: Console) -> None:
    device = console.devices["audio"]
    alarm = wait_for(lambda: next(iter(console.admin.get(
        "/v1/alarms", params={"device": device, "state": "active"}).json()["items"]), None),
        timeout_s=30, what="the amplifier's temperature alarm")
    login(page, console, "operator", "/alarms")
    row = page.locator(f"tr[data-alarm='{alarm['id']}']")
    expect(row.locator("[data-test=alarm-state]")).to_have_text("活动")
    row.locator("[data-test=ack]").click()
    expect(row.locator("[data-test=alarm-state]")).to_have_text("已确认")
    history = page.locator("[data-test=alarm-history]")
    expect(history).to_contain_text("确认")
    expect(history).to_contain_text(console.users["operator"][0])
    stored = console.admin.get(f"/v1/alarms/{alarm['id']}").json()
    assert (stored["state"], stored["acknowledged_by"]) == (
        "acknowledged", console.users["operator"][0])
    shoot(page, console, "alarms")


def test_dispatcher_verifies_a_reported_event(
    page: Page, console: Console, city_events: list[int]
) -> None:
    reported = city_events[0]
    login(page, console, "dispatcher", "/events")
    card = page.locator(f"[data-column=reported] [data-event='{reported}']")
    expect(card).to_be_visible()
    expect(page.locator("[data-column=processing] .card")).not_to_have_count(0)
    shoot(page, console, "events")
    card.click()
    expect(page.locator("[data-test=event-state]")).to_have_text("上报")
    page.fill("[data-test=note]", "已电话核实，井盖确已缺失")
    page.click("[data-test=event-actions] button[data-action=verify]")
    expect(page.locator("[data-test=event-state]")).to_have_text("核实")
    step = page.locator("[data-test=event-timeline] li[data-action=verify]")
    expect(step).to_contain_text("已电话核实")
    expect(page.locator("[data-test=event-actions] button[data-action=register]")).to_be_visible()
    assert console.admin.get(f"/v1/events/{reported}").json()["state"] == "verifying"
    shoot(page, console, "event")


def test_staff_of_another_department_are_refused_clearly(
    page: Page, console: Console, city_events: list[int]
) -> None:
    other = city_events[1]  # dispatched to water resources; this person is urban management
    login(page, console, "department_staff", f"/events/{other}")
    expect(page.locator("[data-test=event-state]")).to_have_text("派遣")
    expect(page.locator("[data-test=event-actions] button[data-action=verify]")).to_have_count(0)
    page.click("[data-test=event-actions] button[data-action=accept]")
    refused = page.locator("[data-test=event-refused]")
    expect(refused).to_contain_text("无权办理")
    expect(refused).to_contain_text("water-resources")
    assert console.admin.get(f"/v1/events/{other}").json()["state"] == "dispatched"
