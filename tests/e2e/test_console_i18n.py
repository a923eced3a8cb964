"""Every console page in Chinese shows words, not keys; and the console defects field users met:
a refused application shown as submitted, a double-click sending two commands, KPIs reading
0/0 before the first answer, an economy total that disagreed with itself, an extension of
100,000 working days, a squashed ingestion chart."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import psycopg
import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e import seed
from tests.e2e.conftest import Console, login

# an i18n key ("events.timeline") or an API enumeration shown raw ("request_extend")
RAW_KEY = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b|\b[a-z]+\.[a-z]+[A-Za-z_]*\b")
VISIBLE_TEXT = """() => {
  const skip = new Set();
  for (const el of document.querySelectorAll('.mono, input, textarea, select')) skip.add(el);
  const walk = (node) => {
    if (skip.has(node)) return '';
    if (node.nodeType === Node.TEXT_NODE) return node.textContent + ' ';
    if (node.nodeType !== Node.ELEMENT_NODE) return '';
    const style = getComputedStyle(node);
    if (style.display === 'none' || style.visibility === 'hidden') return '';
    return [...node.childNodes].map(walk).join('');
  };
  return walk(document.body);
}"""


@pytest.fixture
def extended_event(console: Console, city_events: list[int]) -> int:
    """The processing event with an extension asked for and refused: request_extend and
    refuse_extend on its timeline."""
    event = city_events[2]
    staff, dispatcher = console.client("department_staff"), console.client("dispatcher")
    asked = staff.post(f"/v1/events/{event}/requests", json={
        "kind": "extend", "note": "材料未到", "amount": 1, "unit": "work_days"})
    assert asked.status_code == 201, asked.text
    refused = dispatcher.post(f"/v1/events/{event}/requests/{asked.json()['id']}/refuse",
                              json={"note": "请按期办理"})
    assert refused.status_code == 200, refused.text
    return event


@pytest.fixture
def cloud_alarm(console: Console, database_url: str) -> Iterator[None]:
    seeded = seed.cloud(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO cloud_alarms (cloud, kind, subject, severity, message) VALUES"
                     " ('cityops-lab', 'server_error', 'emergency-management/yjj-edge-gw-03',"
                     " 'critical', 'server yjj-edge-gw-03 of project emergency-management"
                     " is in ERROR')")
    yield
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM cloud_alarms"
                     " WHERE subject = 'emergency-management/yjj-edge-gw-03'")
    seed.remove_cloud(database_url, seeded)


def _pages(console: Console, events: list[int]) -> list[tuple[str, str]]:
    """(path, a selector that shows the page's data has arrived)."""
    wall = console.devices["wall"]
    return [
        ("/", "[data-test=kpi-devices] .kpi-value >> text=/\\d+\\/\\d+/"),
        ("/devices", "[data-test=device-table] tr.clickable"),
        (f"/devices/{wall}", "[data-test=device-title]"),
        *[(f"/control?tab={tab}", ".panel, .empty") for tab in
          ("wall", "audio", "matrix", "power", "security")],
        ("/alarms", "[data-test=alarm-table] tr[data-alarm]"),
        ("/events", "[data-test=board] [data-event]"),
        *[(f"/events/{e}", "[data-test=event-timeline] li") for e in events],
        ("/cloud", "[data-test=servers] >> text=slj-flood-model"),
        ("/network", "[data-test=nodes] [data-node], [data-test=pick-hint]"),
        *[(f"/data?tab={tab}", ".panel") for tab in
          ("catalogue", "ingestion", "services", "economy", "panorama", "quality")],
        ("/decisions?tab=cockpit", "[data-test=cockpit-classes] .kpi, [data-test=no-indicators]"),
        ("/decisions?tab=indicators", ".panel"),
        ("/decisions?tab=analysis", "[data-test=hotspots]"),
        ("/admin?tab=rules", "[data-test=rules] tr[data-rule]"),
        ("/admin?tab=categories", "[data-test=categories] tr[data-category]"),
        ("/admin?tab=users", "[data-test=users] tr[data-user]"),
        *[(f"/desk?tab={tab}", ".page .panel")
          for tab in ("requests", "resources", "quality", "events")],
    ]


def test_every_page_in_chinese_shows_words_not_keys(
    page: Page, console: Console, city_events: list[int], extended_event: int, cloud_alarm: None,
    database_url: str,
) -> None:
    # a point or method of a profile that has no title for it shows its own name (an identifier,
    # like a device id), not a missing word; the rest of the suite registers such profiles
    with psycopg.connect(database_url) as conn:
        names = {r[0] for r in conn.execute(
            "SELECT name FROM points UNION SELECT m->>'name' FROM profiles,"
            " jsonb_array_elements(coalesce(body->'methods', '[]')) AS m")}
    login(page, console, "admin", "/")
    problems = []
    for path, ready in _pages(console, city_events):
        page.goto(path)
        page.wait_for_selector("header.topbar")
        page.locator(ready).first.wait_for(state="visible")
        missing = page.evaluate("[...(window.__i18nMissing || [])]")
        shown = sorted(set(m.group(0) for m in RAW_KEY.finditer(page.evaluate(VISIBLE_TEXT)))
                       - names)
        if missing or shown:
            problems.append(f"{path}: missing {missing}, shown raw {shown}")
    assert not problems, "\n".join(problems)
    page.goto(f"/events/{extended_event}")
    timeline = page.locator("[data-test=event-timeline]")
    expect(timeline).to_contain_text("申请延期")
    expect(timeline).to_contain_text("延期申请未批准")
    page.goto("/cloud")
    expect(page.locator("body")).to_contain_text(
        "项目 emergency-management 的云主机 yjj-edge-gw-03 处于错误状态")
    page.goto("/alarms")
    first = page.locator("[data-test=alarm-table] tr[data-alarm] td").nth(1)
    expect(first).not_to_contain_text("value ")  # the rule engine's English template, rendered


def test_a_refused_application_says_refused_and_why(page: Page, console: Console) -> None:
    login(page, console, "department_staff", "/data")
    page.locator("[data-test=resources] tr.clickable").first.click()
    page.fill("textarea", "看看")  # too short a purpose: the compliance check refuses it
    page.click("button.primary >> text=申请")
    outcome = page.locator("[data-test=apply-outcome]")
    expect(outcome).to_contain_text("未通过")
    expect(outcome).to_contain_text("purpose")
    expect(page.locator(".toast").last).not_to_contain_text("已提交申请")


def test_a_double_click_sends_one_command(page: Page, console: Console) -> None:
    audio = console.devices["audio"]
    login(page, console, "operator", "/control?tab=audio")
    volume = page.locator(f".panel[data-device='{audio}'] .pc[data-point=master_volume_db]")
    volume.locator("[data-test=value-input]").fill("-7.5")
    volume.locator("[data-test=apply]").dblclick()
    expect(volume.locator("[data-test=cmd-result]")).to_contain_text("设备回读 -7.5")
    sent = console.admin.get("/v1/commands", params={"device": audio, "limit": 50}).json()
    assert [c["value"] for c in sent["items"]].count(-7.5) == 1


def test_kpis_wait_for_their_figures_instead_of_reading_zero(page: Page, console: Console) -> None:
    held: list[Route] = []
    released = []

    def hold(route: Route) -> None:
        if released:
            route.continue_()
        else:
            held.append(route)

    login(page, console, "admin", "/devices")
    page.route("**/v1/devices?*", hold)
    page.goto("/")
    page.wait_for_function("() => document.querySelector('[data-test=kpi-devices]') !== null")
    kpi = page.locator("[data-test=kpi-devices] .kpi-value")
    expect(kpi).to_have_text("…")  # the device list is held back: not yet known, not 0/0
    released.append(True)
    for route in held:
        route.continue_()
    expect(kpi).to_have_text(re.compile(r"^\d+/\d+$"))
    # the layout settles as the figures arrive (the map and the tables beside the chart):
    # the chart must reach its share of the panel, polled with a deadline
    share = page.wait_for_function(
        "() => { const c = document.querySelector('[data-test=rate-chart]');"
        " const h = c && c.getBoundingClientRect().height,"
        " p = c && c.parentElement.getBoundingClientRect().height;"
        " return c && p && h / p >= 0.55 ? h / p : false; }", timeout=10_000)
    assert share.json_value() >= 0.55


ECONOMY = {
    "firms": 3, "totals": {"revenue": 3_942_800.0, "value_added": 800_000.0},
    "yoy": {"revenue": 0.05, "value_added": 0.04}, "loss_making": {"firms": 0},
    "by_town": [], "by_industry": [{"key": f"行业{i}", "revenue": r} for i, r in enumerate(
        [900_000, 700_000, 600_000, 500_000, 400_000, 300_000, 200_000, 150_000, 100_000,
         92_800])],
}


def test_the_economy_total_is_the_kpi_total(page: Page, console: Console) -> None:
    # the API's answer is fixed here: this is about how the page shows a given answer
    login(page, console, "admin", "/devices")
    page.route("**/v1/economy/overview*", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(ECONOMY)))
    page.goto("/data?tab=economy")
    expect(page.locator(".kpi").nth(1)).to_contain_text("394.28")
    expect(page.locator("[data-test=industry-total]")).to_contain_text("394.28亿元")


def test_an_extension_beyond_the_bound_is_refused_before_sending(
    page: Page, console: Console, city_events: list[int]
) -> None:
    event = city_events[2]
    login(page, console, "department_staff", f"/events/{event}")
    page.fill("[data-test=extension-days]", "100000")
    expect(page.locator("[data-test=extension-bound]")).to_contain_text("不超过 30 个工作日")
    before = console.admin.get(f"/v1/events/{event}").json().get("requests", [])
    page.click("[data-test=event-actions] button[data-request=extend]")
    expect(page.locator("[data-test=event-refused]")).to_contain_text("不超过 30 个工作日")
    assert console.admin.get(f"/v1/events/{event}").json().get("requests", []) == before


def test_an_offline_device_shows_why_in_the_readers_language(
    page: Page, console: Console, database_url: str
) -> None:
    ups = console.admin.get(f"/v1/devices/{console.devices['ups']}").json()
    gateway = f"gw-why-{console.gateway[-6:]}"
    with psycopg.connect(database_url) as conn:  # a registered gateway whose agent is away
        conn.execute("INSERT INTO gateways (id) VALUES (%s)", (gateway,))
    device = {"id": f"{gateway}-ups", "gateway": gateway, "profile": ups["profile"],
              "address": {"host": "127.0.0.1", "port": 1, "unit_id": 1}}
    assert console.admin.post("/v1/devices", json=device).status_code == 201, device
    reason = "device_auth_refused: ups at 127.0.0.1:1 refused user 'agent'"
    with psycopg.connect(database_url) as conn:  # what the gateway's status message records
        conn.execute("UPDATE gateways SET last_seen_at = now(), last_status = %s WHERE id = %s",
                     (json.dumps({"state": "online", "devices": {device["id"]: "offline"},
                                  "reasons": {device["id"]: reason}}), gateway))
    login(page, console, "admin", "/devices")
    why = page.locator(f"tr[data-device='{device['id']}'] [data-test=offline-reason]")
    expect(why).to_have_text("设备拒绝了账号或证书")
    expect(why).to_have_attribute("title", reason)
